#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs redis-server if missing (as
# root, from Debian's packages), creates .venv, installs chatbridge with its dev extras,
# then runs ruff, mypy --strict and pytest. Fails if any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Redis store is tested against a real redis-server (Debian's package).
if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing redis-server"
    apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
fi
export CHATBRIDGE_REQUIRE_REDIS=1

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
# The third-party channel of docs/plugins.md, installed as a plugin author's package is.
.venv/bin/python -m pip install --quiet --no-deps -e examples/acme-chat

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy --strict chatbridge conformance/chatbridge_conformance examples/acme-chat/acme_chat.py
echo "== pytest"
.venv/bin/pytest "$@"

#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs redis-server and PostgreSQL if
# missing (as root, from Debian's packages), creates .venv, installs chatbridge with its
# dev extras, then runs ruff, mypy --strict and pytest. Fails if any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests run a real redis-server, and a throwaway PostgreSQL cluster (tests/postgres_server.py)
# from the postgresql package, whose initdb Debian puts off PATH, in /usr/lib/postgresql/*/bin.
packages=()
if ! command -v redis-server >/dev/null 2>&1; then
    packages+=(redis-server)
fi
if ! command -v initdb >/dev/null 2>&1 \
    && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    packages+=(postgresql)
fi
if ((${#packages[@]})); then
    echo "== installing ${packages[*]}"
    apt-get update -qq >/dev/null && apt-get install -y -qq "${packages[@]}" >/dev/null
fi
export CHATBRIDGE_REQUIRE_REDIS=1
export CHATBRIDGE_REQUIRE_POSTGRES=1

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

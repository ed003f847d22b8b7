#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: creates .venv, installs chatbridge with
# its dev extras, then runs ruff, mypy --strict and pytest. Fails if any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy --strict chatbridge conformance/chatbridge_conformance
echo "== pytest"
.venv/bin/pytest "$@"

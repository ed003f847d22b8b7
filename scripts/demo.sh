#!/usr/bin/env bash
# Installs chatbridge into .venv and runs the offline demo (no credentials, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python -m chatbridge.testing.demo "$@"

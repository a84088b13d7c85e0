#!/usr/bin/env bash
# Install everything the tests need (idempotent), lint, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/pytest -q -ra "$@"

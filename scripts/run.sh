#!/usr/bin/env bash
# Install what appyard needs, then run the server in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/appyard server start "$@"

#!/usr/bin/env bash
# Run webmini's whole test suite the way CI does: install what is missing
# (Debian packages as root, the virtualenv), then pytest, ruff and mypy.
# The tests start their own MariaDB, memcached, uWSGI and nginx on free
# loopback ports in temporary directories, and stop them afterwards.
# Extra arguments go to pytest (e.g. scripts/test.sh -k routing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh "test" scripts/debian-packages.txt

ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
.venv/bin/python -m pytest "$@"
.venv/bin/ruff check .
.venv/bin/mypy
echo "webmini: tests, ruff and mypy passed"

#!/usr/bin/env bash
# Serve examples/hello.py under uWSGI + gevent with the production config
# (uwsgi.ini) on http://127.0.0.1:8080, from any working directory.
#
# On a fresh Debian machine with Python 3.11+ it first sets up what is
# missing: a C compiler and Python headers (uWSGI is compiled by pip), the
# virtualenv in .venv, and webmini with its uwsgi extra (pip install -e '.[uwsgi]').
#
# Overrides (see uwsgi.ini for all of them), e.g.:
#   WEBMINI_HTTP=127.0.0.1:9000 scripts/serve.sh
#   WEBMINI_MODULE=myapp:application WEBMINI_PROCESSES=4 scripts/serve.sh
# Extra arguments go to uwsgi (scripts/serve.sh --stats-http).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh" "uwsgi"

export WEBMINI_HTTP="${WEBMINI_HTTP:-127.0.0.1:8080}"
echo "webmini: serving ${WEBMINI_MODULE:-examples.hello:application} on http://${WEBMINI_HTTP}/" >&2
exec "$ROOT/.venv/bin/uwsgi" --ini "$ROOT/uwsgi.ini" "$@"

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
# The uwsgi-protocol socket (for nginx) lives in a private directory: 0700,
# made fresh by mktemp, never a predictable name in a shared /tmp.
if [ -z "${WEBMINI_SOCKET:-}" ]; then
    RUNDIR="$(mktemp -d "${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/webmini.XXXXXXXX")"
    export WEBMINI_SOCKET="$RUNDIR/uwsgi.sock"
fi
# Group of that socket: ours (uwsgi.ini's default is nginx's, www-data).
export WEBMINI_SOCKET_GROUP="${WEBMINI_SOCKET_GROUP:-$(id -g)}"
# uwsgi.ini refuses to run its workers as root unless told. This script is
# for trying webmini out on loopback, with the uwsgi socket in a root-only
# directory: as root it says so and goes on. In production give uwsgi.ini a
# service account (WEBMINI_UID/WEBMINI_GID) instead.
if [ "$(id -u)" = 0 ] && [ -z "${WEBMINI_UID:-}" ]; then
    echo "webmini: WARNING: serving as root (set WEBMINI_UID and WEBMINI_GID to drop privileges)" >&2
    export WEBMINI_ALLOW_ROOT="${WEBMINI_ALLOW_ROOT:-1}"
fi
echo "webmini: serving ${WEBMINI_MODULE:-examples.hello:application} on http://${WEBMINI_HTTP}/" >&2
exec "$ROOT/.venv/bin/uwsgi" --ini "$ROOT/uwsgi.ini" "$@"

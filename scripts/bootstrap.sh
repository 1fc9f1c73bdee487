#!/usr/bin/env bash
# Shared set-up for scripts/serve.sh and scripts/test.sh: Debian packages,
# the virtualenv in .venv and webmini installed in it with the given extras.
# Usage: source scripts/bootstrap.sh "<extras>" [debian package list file]
set -euo pipefail

WEBMINI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEBMINI_EXTRAS="${1:-all}"
WEBMINI_PACKAGES_FILE="${2:-}"
PYTHON="${PYTHON:-python3}"

_apt_install() {
    [ "$#" -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "webmini: installing Debian packages: $*" >&2
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

_missing=()
if ! command -v cc >/dev/null 2>&1; then _missing+=(build-essential); fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then _missing+=(python3-venv); fi
if ! "$PYTHON" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    _missing+=(python3-dev)
fi
if [ -n "$WEBMINI_PACKAGES_FILE" ]; then
    while read -r pkg; do
        case "$pkg" in ''|'#'*) continue ;; esac
        dpkg -s "$pkg" >/dev/null 2>&1 || _missing+=("$pkg")
    done < "$WEBMINI_PACKAGES_FILE"
fi
_apt_install "${_missing[@]+"${_missing[@]}"}"

if [ ! -x "$WEBMINI_ROOT/.venv/bin/python" ]; then
    "$PYTHON" -m venv "$WEBMINI_ROOT/.venv"
fi
"$WEBMINI_ROOT/.venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$WEBMINI_ROOT/.venv/bin/python" -m pip install -q -e "$WEBMINI_ROOT[$WEBMINI_EXTRAS]"

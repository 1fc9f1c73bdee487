#!/usr/bin/env bash
# Shared set-up for scripts/serve.sh and scripts/test.sh: Debian packages,
# the virtualenv in .venv and webmini installed in it (editable).
# Usage: source scripts/bootstrap.sh "<names>" [debian package list file]
#   <names>: comma-separated; "test" and "bench" are the development
#   dependency groups of pyproject.toml (PEP 735, installed with
#   `pip install --group`, pip >= 25.1, never published), anything else is
#   an extra (mysql, uwsgi, all...). A group implies the "all" extra.
# Environment: PYTHON (interpreter for a new virtualenv, default python3),
#   WEBMINI_VENV (virtualenv directory, default <root>/.venv).
set -euo pipefail

WEBMINI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEBMINI_NAMES="${1:-all}"
WEBMINI_PACKAGES_FILE="${2:-}"
PYTHON="${PYTHON:-python3}"
WEBMINI_VENV="${WEBMINI_VENV:-$WEBMINI_ROOT/.venv}"

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

if [ ! -x "$WEBMINI_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$WEBMINI_VENV"
fi
_extras=()
_groups=()
IFS=',' read -ra _names <<< "$WEBMINI_NAMES"
for _name in "${_names[@]+"${_names[@]}"}"; do
    case "$_name" in
        '') ;;
        test|bench) _groups+=(--group "$WEBMINI_ROOT/pyproject.toml:$_name"); _extras+=(all) ;;
        *) _extras+=("$_name") ;;
    esac
done
_extra_list="$(IFS=','; echo "${_extras[*]+"${_extras[*]}"}")"
_target="$WEBMINI_ROOT"
[ -n "$_extra_list" ] && _target="$WEBMINI_ROOT[$_extra_list]"
# pip runs only when this virtualenv was not yet set up for these names from
# the same pyproject.toml, interpreter and this script: a stamp per names in
# it holds their hash (a warm run then costs no resolver pass; scripts/test.sh
# and scripts/serve.sh keep one each; delete it to force a pass).
_stamp="$WEBMINI_VENV/.webmini-bootstrap-${WEBMINI_NAMES//[^A-Za-z0-9_-]/_}"
_want="$( { cat "$WEBMINI_ROOT/pyproject.toml" "$WEBMINI_ROOT/scripts/bootstrap.sh"; echo "$WEBMINI_NAMES"
            "$WEBMINI_VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
    rm -f "$_stamp"
    # --group needs pip >= 25.1.
    "$WEBMINI_VENV/bin/python" -m pip install -q --upgrade 'pip>=25.1' >/dev/null
    "$WEBMINI_VENV/bin/python" -m pip install -q -e "$_target" "${_groups[@]+"${_groups[@]}"}"
    echo "$_want" > "$_stamp"
fi

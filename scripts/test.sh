#!/usr/bin/env bash
# Run webmini's whole test suite the way CI does: install what is missing
# (Debian packages as root, the virtualenvs), then pytest on every supported
# CPython, ruff and mypy. The tests start their own MariaDB, memcached,
# uWSGI, gunicorn and nginx on free loopback ports in temporary directories,
# and stop them afterwards.
# Extra arguments go to pytest (e.g. scripts/test.sh -k routing).
#
# Python versions: every supported CPython this machine has (3.11, 3.12, 3.13;
# at least one). The first runs in .venv, each other in .venv-X.Y. An
# interpreter is taken from $PYTHON_X_Y (e.g. PYTHON_3_12=/usr/bin/python3.12),
# else from pyenv ($PYENV_ROOT/versions/X.Y.*), else pythonX.Y on PATH. A
# version the machine lacks is reported loudly and left out (a fresh Debian 12
# has only 3.11); WEBMINI_PYTHONS="3.11 3.12" names the versions that must
# all be found, and then a missing one fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
STRICT="${WEBMINI_PYTHONS:+1}"
read -ra WANTED <<< "${WEBMINI_PYTHONS:-3.11 3.12 3.13}"

find_python() {
    local version="$1" var="PYTHON_${1//./_}" candidate
    if [ -n "${!var:-}" ]; then echo "${!var}"; return 0; fi
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    # The newest patch release pyenv has for this version.
    candidate="$(ls -d "$pyenv_root/versions/$version".* 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$candidate" ] && [ -x "$candidate/bin/python" ]; then
        echo "$candidate/bin/python"; return 0
    fi
    if command -v "python$version" >/dev/null 2>&1; then command -v "python$version"; return 0; fi
    return 1
}

PYTHONS=()
VERSIONS=()
for version in "${WANTED[@]}"; do
    if ! python="$(find_python "$version")"; then
        if [ -n "$STRICT" ]; then
            echo "webmini: Python $version not found (set PYTHON_${version//./_}, or install it with pyenv)" >&2
            exit 1
        fi
        echo "webmini: WARNING: Python $version not found on this machine: the suite runs without it" >&2
        continue
    fi
    actual="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$actual" != "$version" ]; then
        echo "webmini: $python is Python $actual, not $version" >&2
        exit 1
    fi
    PYTHONS+=("$python")
    VERSIONS+=("$version")
done
if [ "${#VERSIONS[@]}" -eq 0 ]; then
    echo "webmini: none of Python ${WANTED[*]} found: webmini needs Python 3.11 or newer" >&2
    exit 1
fi

# HTTP dates must not follow the process locale: a test runs under de_DE.
if ! locale -a 2>/dev/null | grep -qi '^de_DE\.utf-\?8$'; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if ! command -v localedef >/dev/null 2>&1; then
        $sudo apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends locales >/dev/null
    fi
    echo "webmini: generating the de_DE.UTF-8 locale" >&2
    $sudo localedef -i de_DE -f UTF-8 de_DE.UTF-8
fi

ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
VENVS=()
for i in "${!VERSIONS[@]}"; do
    venv="$ROOT/.venv"
    [ "$i" -gt 0 ] && venv="$ROOT/.venv-${VERSIONS[$i]}"
    VENVS+=("$venv")
    echo "webmini: Python ${VERSIONS[$i]} (${PYTHONS[$i]}) in ${venv#"$ROOT"/}" >&2
    PYTHON="${PYTHONS[$i]}" WEBMINI_VENV="$venv" \
        source scripts/bootstrap.sh "test" scripts/debian-packages.txt
done

# A hung test fails the run within the CI budget instead of stalling it.
run_pytest() {
    timeout --kill-after=30 "${WEBMINI_TEST_TIMEOUT:-1200}" "$1/bin/python" -m pytest "${@:2}"
}

# The Pythons run at the same time (most of a run is waiting on servers, not
# CPU), each into its own log, printed in version order as each one ends;
# WEBMINI_TEST_JOBS=1 runs them one after another with live output. Every
# test runs on every Python either way; the built sdist and wheel are shared
# between them (tests/test_packaging.py). A test with a wall-clock bound runs
# alone: the others wait between two tests meanwhile (tests/support/overlap.py).
FAILED=()  # what failed, named in the last line
if [ "${WEBMINI_TEST_JOBS:-${#VERSIONS[@]}}" -le 1 ] || [ "${#VERSIONS[@]}" -eq 1 ]; then
    for i in "${!VERSIONS[@]}"; do
        echo "webmini: pytest on Python ${VERSIONS[$i]}" >&2
        run_pytest "${VENVS[$i]}" "$@" || FAILED+=("pytest on Python ${VERSIONS[$i]}")
    done
else
    LOGS="$(mktemp -d "${TMPDIR:-/tmp}/webmini-test.XXXXXX")"
    PIDS=()
    for i in "${!VERSIONS[@]}"; do
        WEBMINI_TEST_LOCK="$LOGS/lock" run_pytest "${VENVS[$i]}" "$@" >"$LOGS/${VERSIONS[$i]}.log" 2>&1 &
        PIDS+=("$!")
    done
    echo "webmini: pytest on Python ${VERSIONS[*]} at once, logs in $LOGS" >&2
    for i in "${!VERSIONS[@]}"; do
        rc=0
        wait "${PIDS[$i]}" || rc=$?
        echo "==================== Python ${VERSIONS[$i]}: pytest exit status $rc ====================" >&2
        cat "$LOGS/${VERSIONS[$i]}.log"
        if [ "$rc" -ne 0 ]; then FAILED+=("pytest on Python ${VERSIONS[$i]}"); fi
    done
    if [ "${#FAILED[@]}" -eq 0 ]; then rm -rf "$LOGS"; fi
fi
.venv/bin/ruff check . || FAILED+=("ruff")
.venv/bin/mypy || FAILED+=("mypy")
if [ "${#FAILED[@]}" -ne 0 ]; then
    echo "webmini: FAILED: $(printf "%s; " "${FAILED[@]}")see above" >&2
    exit 1
fi
echo "webmini: tests on Python ${VERSIONS[*]}, ruff and mypy passed"

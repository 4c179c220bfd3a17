#!/usr/bin/env bash
# Prepare a development environment from a clean clone: Debian's memcached and a virtual
# environment in .venv with the service, its test requirements and the real OpenStack services
# that the functional tests and tools/stack run on loopback. Safe to run again: it only installs
# what is missing or out of date.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

PYTHON=${PYTHON:-python3}
VENV=${COMPUTE_API_VENV:-$top/.venv}

if ! command -v memcached >/dev/null 2>&1; then
    echo "bootstrap: installing memcached (Debian package)" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq memcached >/dev/null
fi

stamp="$VENV/.bootstrap-stamp"
want="$(cat requirements.txt test-requirements.txt setup.cfg | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing Python requirements into $VENV (about a minute)" >&2
    pip_q() { "$VENV/bin/python" -m pip install -q "$@" 2>&1 | grep -v -e "is ignored: it is neither" -e "BuildBackendWarning" || true; }
    pip_q --upgrade pip
    pip_q -r requirements.txt -r test-requirements.txt
    pip_q -e . --no-deps
    "$VENV/bin/python" -c "import compute_api, keystone, glance"
    echo "$want" > "$stamp"
fi

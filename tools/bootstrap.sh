#!/usr/bin/env bash
# Prepare a development environment from a clean clone: Debian's packages and the virtual
# environments:
#   .venv          the test tools: the service (editable), its test requirements, the clients
#                  and the real Keystone and Glance that tools/stack runs on loopback;
#   .venv-service  the service as an operator installs it (doc/source/install.rst): the package
#                  built from this source with its runtime requirements only, plus the WSGI
#                  servers. tools/stack and the functional tests run compute-api from here, so a
#                  runtime dependency missing from requirements.txt fails the suite;
#   .venv-nova     Nova's API with compute-api's filter, for the extension's tests.
# (tools/build-docs makes .venv-docs, and tools/compat .venv-compat/<series>.)
#
#   tools/bootstrap.sh            everything tools/run-tests needs
#   tools/bootstrap.sh --stack    only what tools/stack runs: memcached, PostgreSQL and HAProxy
#                                 from Debian, .venv and .venv-service (no Nova, no nginx, no
#                                 Debian uwsgi)
#   tools/bootstrap.sh [--stack] --list    name the virtual environments it makes, and stop
#
# Safe to run again: it only installs what is missing or out of date (the service is rebuilt
# whenever its source changed). .venv and .venv-service are installed side by side. While it
# installs it prints a line about every $BOOTSTRAP_PROGRESS_EVERY (10) seconds.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PYTHON=${PYTHON:-python3}
VENV=${COMPUTE_API_VENV:-$top/.venv}
SERVICE_VENV=${COMPUTE_API_SERVICE_VENV:-$top/.venv-service}
NOVA_VENV=${COMPUTE_API_NOVA_VENV:-$top/.venv-nova}
NOVA_VERSION=34.0.0
PROGRESS_EVERY=${BOOTSTRAP_PROGRESS_EVERY:-10}

# vpip VENV ARGS...: pip install quietly into VENV; on failure show pip's output and fail.
vpip() {
    local venv=$1 log
    shift
    log=$(mktemp)
    if ! "$venv/bin/python" -m pip install -q "$@" > "$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "bootstrap: pip install $* failed in $venv" >&2
        return 1
    fi
    rm -f "$log"
}

# make_venv VENV: create VENV unless it exists.
make_venv() {
    if [ ! -x "$1/bin/python" ]; then
        echo "bootstrap: creating $1" >&2
        "$PYTHON" -m venv "$1"
    fi
}

# packages VENV: how many distributions VENV holds so far (the progress of a pip install).
packages() {
    local found=("$1"/lib/python3*/site-packages/*.dist-info)
    [ -e "${found[0]}" ] || { echo 0; return; }
    echo "${#found[@]}"
}

# wait_with_progress WHAT PID... : wait for the background jobs PID..., printing
# "bootstrap: still WHAT (N s)" every PROGRESS_EVERY seconds while any of them runs (WHAT is
# evaluated each time, so it may name a function whose output changes); fails if any failed.
wait_with_progress() {
    local what=$1 started=$SECONDS next pid alive rc=0
    shift
    next=$((SECONDS + PROGRESS_EVERY))
    while :; do
        alive=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; fi
        done
        [ "$alive" = 1 ] || break
        sleep 0.5
        if [ "$SECONDS" -ge "$next" ]; then
            echo "bootstrap: still $(eval "$what") ($((SECONDS - started)) s)" >&2
            next=$((SECONDS + PROGRESS_EVERY))
        fi
    done
    for pid in "$@"; do
        wait "$pid" || rc=1
    done
    return "$rc"
}

# Only the functions, for the tests (tests/tooling/test_bootstrap.py).
if [ "${BOOTSTRAP_FUNCTIONS_ONLY:-}" = 1 ]; then
    return 0 2>/dev/null || exit 0
fi

stack_only=0
list=0
for arg in "$@"; do
    case "$arg" in
        --stack) stack_only=1 ;;
        --list) list=1 ;;
        *) echo "usage: tools/bootstrap.sh [--stack] [--list]" >&2; exit 2 ;;
    esac
done
if [ "$list" = 1 ]; then
    echo "$VENV"
    echo "$SERVICE_VENV"
    [ "$stack_only" = 1 ] || echo "$NOVA_VENV"
    exit 0
fi
cd "$top"

# Debian packages: memcached for the stack; PostgreSQL and HAProxy for the scaled stack
# (tools/stack up --scaled, tests/functional/test_scaled.py), which runs private instances of
# both, never the system services; for the tests, nginx and Debian's uwsgi with its Python 3
# plugin (the functional tests of the shipped nginx and uwsgi example configurations).
debs=""
# What a bare Debian's Python lacks for the rest: venv (ensurepip), and a C compiler and Python's
# headers, which pip needs to build uWSGI (PyPI has no wheel of it).
"$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || debs="$debs python3-venv"
command -v cc >/dev/null 2>&1 || debs="$debs gcc libc6-dev"
"$PYTHON" -c 'import os, sysconfig
raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || debs="$debs python3-dev"
command -v memcached >/dev/null 2>&1 || debs="$debs memcached"
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || debs="$debs postgresql"
[ -x /usr/sbin/haproxy ] || debs="$debs haproxy"
if [ "$stack_only" = 0 ]; then
    [ -x /usr/sbin/nginx ] || debs="$debs nginx-light"
    [ -x /usr/bin/uwsgi ] && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] \
        || debs="$debs uwsgi-core uwsgi-plugin-python3"
fi
if [ -n "$debs" ]; then
    echo "bootstrap: installing$debs (Debian packages)" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq &
    wait_with_progress "echo updating the package lists" $!
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $debs >/dev/null &
    wait_with_progress "echo installing$debs" $!
fi

tools_stamp="$VENV/.bootstrap-stamp"
tools_want="$(cat requirements.txt test-requirements.txt setup.cfg tempest-plugin/pyproject.toml \
    | sha256sum | cut -d' ' -f1)"
install_tools() {
    vpip "$VENV" --upgrade pip
    vpip "$VENV" -r requirements.txt -r test-requirements.txt
    vpip "$VENV" -e . --no-deps
    # compute-api's tempest plugin: a distribution of its own (tempest-plugin/), so that
    # tempest is never a dependency of the service; editable, found by tempest through its
    # tempest.test_plugins entry point.
    vpip "$VENV" -e ./tempest-plugin --no-deps
    "$VENV/bin/python" -c "import compute_api, keystone, glance, compute_api_tempest_plugin"
    echo "$tools_want" > "$tools_stamp"
}

# The service's runtime environment: `pip install <source> gunicorn` as in the install guide (and
# uwsgi, whose example configuration is tested too, and which tools/stack runs it under).
# Nothing else goes in here.
service_stamp="$SERVICE_VENV/.bootstrap-stamp"
service_want="$(cat requirements.txt setup.cfg pyproject.toml \
    $(find compute_api etc/compute_api -type f ! -name '*.pyc' ! -name '*.sample' | sort) \
    | sha256sum | cut -d' ' -f1)"
install_service() {
    vpip "$SERVICE_VENV" --upgrade pip
    # --force-reinstall --no-deps of the package itself: its version does not change with
    # every edit, and pip would otherwise keep the old build.
    vpip "$SERVICE_VENV" "$top" gunicorn uWSGI
    vpip "$SERVICE_VENV" --force-reinstall --no-deps "$top"
    "$SERVICE_VENV/bin/python" -c "import compute_api.wsgi"
    echo "$service_want" > "$service_stamp"
}

# Both at once, each environment made in its job: they are independent, and pip spends much of
# its time waiting.
jobs=()
installing=()
if [ ! -f "$tools_stamp" ] || [ "$(cat "$tools_stamp")" != "$tools_want" ]; then
    echo "bootstrap: installing the test tools, Keystone and Glance into $VENV" >&2
    { make_venv "$VENV" && install_tools; } &
    jobs+=($!)
    installing+=("$VENV")
fi
if [ ! -f "$service_stamp" ] || [ "$(cat "$service_stamp")" != "$service_want" ]; then
    echo "bootstrap: installing compute-api and its runtime requirements into $SERVICE_VENV" >&2
    { make_venv "$SERVICE_VENV" && install_service; } &
    jobs+=($!)
    installing+=("$SERVICE_VENV")
fi
installed() {  # "installing: .venv 120 packages, .venv-service 30 packages"
    local venv out=""
    for venv in "${installing[@]}"; do
        out="$out, ${venv##*/} $(packages "$venv") packages"
    done
    echo "installing: ${out#, }"
}
if [ "${#jobs[@]}" -gt 0 ]; then
    wait_with_progress installed "${jobs[@]}"
    echo "bootstrap: $(installed | sed 's/^installing: //'): done" >&2
fi

[ "$stack_only" = 0 ] || exit 0

# Nova's compute API as a Nova operator has it, with compute-api's images filter added: nova
# from PyPI, the memcached client its auth_token needs (not a Nova dependency), gunicorn, and
# compute-api built from this source. tests/nova.py runs Nova's own WSGI application from here
# for the functional tests of the extension (doc/source/nova-extension.rst). Installed with one
# pip call on a fresh environment (1-2 minutes); afterwards only compute-api is rebuilt, whenever
# its source changed.
nova_stamp="$NOVA_VENV/.bootstrap-stamp"
nova_want="nova==$NOVA_VERSION $service_want"
if [ ! -x "$NOVA_VENV/bin/python" ]; then
    make_venv "$NOVA_VENV" &
    wait_with_progress "echo creating $NOVA_VENV" $!
fi
if [ ! -f "$nova_stamp" ] || [ "$(cat "$nova_stamp")" != "$nova_want" ]; then
    if [ "$("$NOVA_VENV/bin/python" -m pip show nova 2>/dev/null | sed -n 's/^Version: //p')" \
            != "$NOVA_VERSION" ]; then
        echo "bootstrap: installing nova $NOVA_VERSION and compute-api into $NOVA_VENV" \
             "(1-2 minutes)" >&2
        vpip "$NOVA_VENV" "nova==$NOVA_VERSION" python-memcached gunicorn "$top" &
    else
        echo "bootstrap: rebuilding compute-api in $NOVA_VENV" >&2
        vpip "$NOVA_VENV" --force-reinstall --no-deps "$top" &
    fi
    wait_with_progress "echo installing: ${NOVA_VENV##*/} \$(packages \"\$NOVA_VENV\") packages" $!
    "$NOVA_VENV/bin/python" -c "import nova, memcache, compute_api.extension"
    echo "$nova_want" > "$nova_stamp"
fi

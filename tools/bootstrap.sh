#!/usr/bin/env bash
# Prepare a development environment from a clean clone: Debian's packages and three virtual
# environments:
#   .venv          the test tools: the service (editable), its test requirements, the clients
#                  and the real Keystone and Glance that tools/stack runs on loopback;
#   .venv-service  the service as an operator installs it (doc/source/install.rst): the package
#                  built from this source with its runtime requirements only, plus the WSGI
#                  servers. tools/stack and the functional tests run compute-api from here, so a
#                  runtime dependency missing from requirements.txt fails the suite;
#   .venv-nova     Nova's API with compute-api's filter, for the extension's tests.
# Safe to run again: it only installs what is missing or out of date (the service is rebuilt
# whenever its source changed).
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$top"

PYTHON=${PYTHON:-python3}
VENV=${COMPUTE_API_VENV:-$top/.venv}
SERVICE_VENV=${COMPUTE_API_SERVICE_VENV:-$top/.venv-service}

# Debian packages: memcached for the stack; nginx and Debian's uwsgi with its Python 3 plugin for
# the functional tests of the shipped nginx and uwsgi example configurations.
debs=""
command -v memcached >/dev/null 2>&1 || debs="$debs memcached"
[ -x /usr/sbin/nginx ] || debs="$debs nginx-light"
[ -x /usr/bin/uwsgi ] && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] \
    || debs="$debs uwsgi-core uwsgi-plugin-python3"
# The scaled stack (tools/stack up --scaled, tests/functional/test_scaled.py): PostgreSQL for
# Keystone's and Glance's databases and HAProxy in front of several compute-api instances; the
# stack runs private instances of both, never the system services.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || debs="$debs postgresql"
[ -x /usr/sbin/haproxy ] || debs="$debs haproxy"
if [ -n "$debs" ]; then
    echo "bootstrap: installing$debs (Debian packages)" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $debs >/dev/null
fi

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

stamp="$VENV/.bootstrap-stamp"
want="$(cat requirements.txt test-requirements.txt setup.cfg tempest-plugin/pyproject.toml \
    | sha256sum | cut -d' ' -f1)"
make_venv "$VENV"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing Python requirements into $VENV (about a minute)" >&2
    vpip "$VENV" --upgrade pip
    vpip "$VENV" -r requirements.txt -r test-requirements.txt
    vpip "$VENV" -e . --no-deps
    # compute-api's tempest plugin: a distribution of its own (tempest-plugin/), so that
    # tempest is never a dependency of the service; editable, found by tempest through its
    # tempest.test_plugins entry point.
    vpip "$VENV" -e ./tempest-plugin --no-deps
    "$VENV/bin/python" -c "import compute_api, keystone, glance, compute_api_tempest_plugin"
    echo "$want" > "$stamp"
fi

# The service's runtime environment: `pip install <source> gunicorn` as in the install guide (and
# uwsgi, whose example configuration is tested too). Nothing else goes in here.
service_stamp="$SERVICE_VENV/.bootstrap-stamp"
service_want="$(cat requirements.txt setup.cfg pyproject.toml \
    $(find compute_api etc/compute_api -type f ! -name '*.pyc' ! -name '*.sample' | sort) \
    | sha256sum | cut -d' ' -f1)"
make_venv "$SERVICE_VENV"
if [ ! -f "$service_stamp" ] || [ "$(cat "$service_stamp")" != "$service_want" ]; then
    echo "bootstrap: installing compute-api and its runtime requirements into $SERVICE_VENV" >&2
    vpip "$SERVICE_VENV" --upgrade pip
    # --force-reinstall --no-deps of the package itself: its version does not change with
    # every edit, and pip would otherwise keep the old build.
    vpip "$SERVICE_VENV" "$top" gunicorn uWSGI
    vpip "$SERVICE_VENV" --force-reinstall --no-deps "$top"
    "$SERVICE_VENV/bin/python" -c "import compute_api.wsgi"
    echo "$service_want" > "$service_stamp"
fi

# Nova's compute API as a Nova operator has it, with compute-api's images filter added: nova
# from PyPI, the memcached client its auth_token needs (not a Nova dependency), gunicorn, and
# compute-api built from this source. tests/nova.py runs Nova's own WSGI application from here
# for the functional tests of the extension (doc/source/nova-extension.rst). Installed with one
# pip call on a fresh environment (1-2 minutes); afterwards only compute-api is rebuilt, whenever
# its source changed.
NOVA_VENV=${COMPUTE_API_NOVA_VENV:-$top/.venv-nova}
NOVA_VERSION=34.0.0
nova_stamp="$NOVA_VENV/.bootstrap-stamp"
nova_want="nova==$NOVA_VERSION $service_want"
make_venv "$NOVA_VENV"
if [ ! -f "$nova_stamp" ] || [ "$(cat "$nova_stamp")" != "$nova_want" ]; then
    if [ "$("$NOVA_VENV/bin/python" -m pip show nova 2>/dev/null | sed -n 's/^Version: //p')" \
            != "$NOVA_VERSION" ]; then
        echo "bootstrap: installing nova $NOVA_VERSION and compute-api into $NOVA_VENV" \
             "(1-2 minutes)" >&2
        vpip "$NOVA_VENV" "nova==$NOVA_VERSION" python-memcached gunicorn "$top"
    else
        echo "bootstrap: rebuilding compute-api in $NOVA_VENV" >&2
        vpip "$NOVA_VENV" --force-reinstall --no-deps "$top"
    fi
    "$NOVA_VENV/bin/python" -c "import nova, memcache, compute_api.extension"
    echo "$nova_want" > "$nova_stamp"
fi

"""PostgreSQL: a private cluster in the workdir for Keystone and Glance.

Only in the scaled stack (``up --scaled``). Debian's server programs
(``/usr/lib/postgresql/<version>/bin``), never the system service:
``initdb`` makes a cluster in ``<workdir>/postgres/data`` and ``postgres``
serves it on a free port of 127.0.0.1 only, without a Unix socket, with
password authentication. Keystone and Glance each get a database and a
role of their own. PostgreSQL refuses to run as root: when the stack is
started as root the cluster belongs to, and runs as, the ``postgres``
user that Debian's package creates.
"""

import glob
import os
import pathlib
import pwd
import re
import time

from tests.stack.common import HOST
from tests.stack.common import SERVICE_START_TIMEOUT
from tests.stack.common import StackError
from tests.stack.processes import log_tail
from tests.stack.processes import pid_alive
from tests.stack.processes import run_command
from tests.stack.processes import spawn

SYSTEM_USER = 'postgres'
SUPERUSER = 'postgres'
DATABASES = ('keystone', 'glance')


def server_bin_dir():
    """Debian's PostgreSQL server programs, the newest version installed."""
    def version(path):
        return [int(n) for n in re.findall(r'\d+', path)]
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=version)
    if not found:
        raise StackError('PostgreSQL is not installed (no /usr/lib/'
                         'postgresql/*/bin/initdb): run tools/bootstrap.sh')
    return pathlib.Path(found[-1]).parent


def _owner():
    """``(uid, gid)`` the cluster runs as, or None for the current user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise StackError(f'PostgreSQL does not run as root and there is no '
                         f'{SYSTEM_USER!r} user: install Debian\'s '
                         f'postgresql package (tools/bootstrap.sh)')
    return entry.pw_uid, entry.pw_gid


def _as_owner(argv):
    if _owner() is None:
        return argv
    return ['/usr/bin/setpriv', f'--reuid={SYSTEM_USER}',
            f'--regid={SYSTEM_USER}', '--init-groups', *argv]


def _check_reachable(path):
    """Fail clearly if the ``postgres`` user cannot reach ``path``."""
    for parent in pathlib.Path(path).parents:
        if not parent.stat().st_mode & 0o001:
            raise StackError(f'the {SYSTEM_USER!r} user, which runs '
                             f'PostgreSQL, cannot enter {parent} (mode '
                             f'{parent.stat().st_mode & 0o777:o}): use a '
                             f'workdir it can reach')


def database_url(state, name):
    """The SQLAlchemy URL of database ``name`` (keystone, glance)."""
    password = state['postgres']['passwords'][name]
    return (f'postgresql+psycopg2://{name}:{password}@{HOST}:'
            f'{state["ports"]["postgres"]}/{name}')


def _connect(state, timeout):
    """A superuser connection, retried while the server starts."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg2.connect(
                host=HOST, port=state['ports']['postgres'], user=SUPERUSER,
                password=state['postgres']['passwords'][SUPERUSER],
                dbname='postgres', connect_timeout=5)
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start(stack):
    """Make the cluster, start it and create the services' databases."""
    state = stack.state
    base = stack.workdir / 'postgres'
    base.mkdir(exist_ok=True)
    pwfile = base / 'superuser-password'
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(state['postgres']['passwords'][SUPERUSER] + '\n')
    owner = _owner()
    if owner:
        _check_reachable(base)
        os.chown(base, *owner)
        os.chown(pwfile, *owner)
    bindir = server_bin_dir()
    run_command(_as_owner([
        bindir / 'initdb', '-D', base / 'data', '-U', SUPERUSER,
        f'--pwfile={pwfile}', '--auth=scram-sha-256', '--encoding=UTF8',
        '--no-locale', '--no-sync']),
        stack.logs / 'setup' / 'initdb.log', cwd=base)
    pwfile.unlink()
    log_path = stack.logs / 'postgres.log'
    pid = spawn(_as_owner([
        bindir / 'postgres', '-D', base / 'data',
        '-c', f'listen_addresses={HOST}',
        '-p', state['ports']['postgres'],
        '-c', 'unix_socket_directories=',
        # A throw-away cluster: durability is not worth the disk writes.
        '-c', 'fsync=off', '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off']), log_path, dict(os.environ),
        cwd=base)
    stack._record('postgres', pid)
    try:
        connection = _connect(state, SERVICE_START_TIMEOUT)
    except Exception as exc:
        if not pid_alive(pid):
            raise StackError(f'postgres (pid {pid}) exited; end of '
                             f'{log_path}:\n{log_tail(log_path)}')
        raise StackError(f'postgres does not accept connections: {exc}')
    _create_databases(state, connection)


def _create_databases(state, connection):
    from psycopg2 import sql

    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for name in DATABASES:
                password = state['postgres']['passwords'][name]
                cursor.execute(
                    sql.SQL('CREATE ROLE {} LOGIN PASSWORD %s').format(
                        sql.Identifier(name)), [password])
                cursor.execute(
                    sql.SQL('CREATE DATABASE {} OWNER {}').format(
                        sql.Identifier(name), sql.Identifier(name)))
    finally:
        connection.close()

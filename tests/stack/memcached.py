"""memcached: Keystone's cache and the ``auth_token`` token caches."""

import os
import pathlib
import shutil
import time

from tests.stack.common import HOST
from tests.stack.common import StackError
from tests.stack.processes import spawn
from tests.stack.processes import stop_process
from tests.stack.processes import wait_tcp
from tests.stack.processes import write_pid_file
from tests.stack.state import save_state


def _argv(port):
    memcached = shutil.which('memcached')
    if not memcached:
        raise StackError('memcached is not installed: run '
                         'tools/bootstrap.sh')
    argv = [memcached, '-l', HOST, '-p', port, '-U', '0', '-m', '64']
    if os.geteuid() == 0:
        argv += ['-u', 'root']
    return argv


def start(stack):
    port = stack.state['ports']['memcached']
    pid = spawn(_argv(port), stack.logs / 'memcached.log', dict(os.environ))
    stack._record('memcached', pid)
    wait_tcp('memcached', port)


def restart(state):
    """Stop memcached and start it again, empty, on the same port.

    Returns ``(stopped_at, ready_at)`` (``time.monotonic()`` values); the
    new PID is saved in the state and in stack.json.
    """
    workdir = pathlib.Path(state['workdir'])
    stop_process(state['pids']['memcached'])
    stopped_at = time.monotonic()
    port = state['ports']['memcached']
    pid = spawn(_argv(port), workdir / 'logs' / 'memcached.log',
                dict(os.environ))
    state['pids']['memcached'] = pid
    write_pid_file(workdir, 'memcached', pid)
    save_state(state)
    wait_tcp('memcached', port)
    return stopped_at, time.monotonic()

"""Starting, watching and stopping the stack's processes.

Every service runs detached in its own session and process group, logs
under ``<workdir>/logs/`` and has a PID file under ``<workdir>/pids/``.

Two things every gunicorn here relies on: Keystone's config loader parses the
process's command line, so gunicorn is started with no arguments at all and
reads a config file named in ``GUNICORN_CMD_ARGS``; and gunicorn's control
socket (one per user by default) is disabled so that servers do not collide.
"""

import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from tests.stack.common import BIN_DIR
from tests.stack.common import HOST
from tests.stack.common import PROCESS_MARKERS
from tests.stack.common import SERVICE_BIN_DIR
from tests.stack.common import SERVICE_VENV
from tests.stack.common import STOP_TIMEOUT
from tests.stack.common import StackError


def free_ports(count):
    """Return ``count`` distinct free TCP ports on the loopback address."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def spawn(argv, log_path, env, cwd=None):
    """Start ``argv`` detached: own session, stdin closed, output to a log.

    ``os.posix_spawn`` rather than ``subprocess.Popen``: nothing keeps a
    handle on the child, so it outlives this process quietly. With ``cwd``
    the program starts in that directory (through ``env --chdir``, which
    then executes it under the same PID). It matters for the service: a
    WSGI server puts its starting directory on ``sys.path``, and started
    from the repository it would import ``compute_api`` from the source
    tree instead of the installed package.
    """
    if cwd is not None:
        argv = ['/usr/bin/env', f'--chdir={cwd}', *argv]
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path),
         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(str(argv[0]), [str(a) for a in argv], env,
                          file_actions=file_actions, setsid=True)


def _proc_stat(pid):
    """Return (state letter, process group) of ``pid``, or None."""
    try:
        text = pathlib.Path(f'/proc/{pid}/stat').read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(')', 1)[1].split()
    return fields[0], int(fields[2])


def children(pid):
    """PIDs of the direct children of ``pid`` (gunicorn's workers)."""
    found = []
    for entry in pathlib.Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / 'stat').read_text()
        except OSError:
            continue
        if int(text.rsplit(')', 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def pid_alive(pid):
    """True if ``pid`` runs (reaping it first if it is a dead child)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    except ChildProcessError:
        pass
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ('Z', 'X')


def is_stack_process(pid):
    """True if ``pid`` is alive and is a gunicorn or memcached process.

    Guards against signalling an unrelated process that reused a PID.
    """
    if not pid_alive(pid):
        return False
    try:
        cmdline = pathlib.Path(f'/proc/{pid}/cmdline').read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    words = [os.path.basename(w) for w in cmdline.decode().split('\0')[:2]]
    return any(m in w for m in PROCESS_MARKERS for w in words)


def _group_alive(pgid):
    """True while any non-zombie process is in process group ``pgid``."""
    for entry in pathlib.Path('/proc').iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(entry.name)
            if stat and stat[1] == pgid and stat[0] not in ('Z', 'X'):
                return True
    return False


def _signal_and_wait(pid, group, signum, timeout):
    """Send ``signum`` to ``pid`` (or its group); True once all are gone."""
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gone = not pid_alive(pid)
        if gone and not (group and _group_alive(pid)):
            return True
        time.sleep(0.05)
    return False


def stop_process(pid, timeout=STOP_TIMEOUT):
    """Stop a stack process: SIGTERM its group, SIGKILL after ``timeout``.

    Returns True if something was stopped, False if ``pid`` was not a
    running stack process.
    """
    if not is_stack_process(pid):
        return False
    # Every stack process leads its own group (setsid); anything else is
    # signalled alone, never our own group.
    group = os.getpgid(pid) == pid
    if not _signal_and_wait(pid, group, signal.SIGTERM, timeout):
        _signal_and_wait(pid, group, signal.SIGKILL, 5)
    return True


def log_tail(path, lines=30):
    """Return the end of a log file for an error message.

    gunicorn ends a failed start with its own tracebacks, so the exception
    that ended the first traceback in the log (usually the real cause) is
    named first.
    """
    try:
        text = pathlib.Path(path).read_text(errors='replace').splitlines()
    except FileNotFoundError:
        return f'({path} does not exist)'
    tail = '\n'.join(text[-lines:])
    first = _first_exception(text)
    return f'first exception: {first}\n...\n{tail}' if first else tail


_CHAINED = ('During handling of the above exception, another exception '
            'occurred:',
            'The above exception was the direct cause of the following '
            'exception:')


def _first_exception(lines):
    """The exception line ending the first traceback in ``lines``; for
    chained exceptions ("During handling of the above exception ..."), the
    last of the chain: the one that was raised."""
    found = None
    in_traceback = False
    for line in lines:
        if line.startswith('Traceback (most recent call last):'):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            found, in_traceback = line, False
        elif found and not in_traceback and line.strip():
            if line.strip() not in _CHAINED:
                return found
    return found


def failure_reason(path, lines=5):
    """Why a program failed, in one line, from its log: the exception its
    first traceback ended with, or else the log's last ``lines`` lines.
    The whole traceback stays in the log."""
    try:
        text = pathlib.Path(path).read_text(errors='replace').splitlines()
    except FileNotFoundError:
        return f'({path} does not exist)'
    first = _first_exception(text)
    if first:
        return first
    return '\n'.join(line for line in text[-lines:])


def answer_status(url):
    """Return the HTTP status ``url`` answers with, or None if no answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return None


def wait_http(name, url, pid, log_path, timeout):
    """Wait until ``url`` answers below 500 while ``pid`` stays alive."""
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid):
            raise StackError(f'{name} (pid {pid}) exited before answering '
                             f'{url}: {failure_reason(log_path)}\n'
                             f'(the whole log: {log_path})')
        status = answer_status(url)
        if status is not None and status < 500:
            return
        if time.monotonic() > deadline:
            raise StackError(f'{name} did not answer {url} within {timeout}s '
                             f'(last status {status}): '
                             f'{failure_reason(log_path)}\n'
                             f'(the whole log: {log_path})')
        time.sleep(0.1)


def wait_tcp(name, port, timeout=10):
    """Wait until something accepts TCP connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StackError(f'{name} is not listening on {HOST}:{port}')


def run_command(argv, log_path, env=None, cwd=None):
    """Run a setup command to completion; fail with the end of its log."""
    with open(log_path, 'ab') as log:
        result = subprocess.run([str(a) for a in argv],
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                check=False)
    if result.returncode:
        raise StackError(f'{" ".join(map(str, argv[:3]))} ... failed '
                         f'(exit {result.returncode}): '
                         f'{failure_reason(log_path)}\n'
                         f'(the whole log: {log_path})')


# --------------------------------------------------------------------------
# gunicorn


def write_gunicorn_conf(path, *, app, port, workers, log_name, workdir):
    """Write a gunicorn config file; gunicorn gets no command-line flags."""
    logs = pathlib.Path(workdir) / 'logs'
    settings = {
        'wsgi_app': app,
        'bind': f'{HOST}:{port}',
        'workers': workers,
        'worker_class': 'sync',
        'timeout': 60,
        'graceful_timeout': 5,
        'control_socket_disable': True,
        'chdir': str(workdir),
        'proc_name': log_name,
        'errorlog': str(logs / f'{log_name}.log'),
        'accesslog': str(logs / f'{log_name}-access.log'),
    }
    lines = [f'{key} = {value!r}' for key, value in settings.items()]
    pathlib.Path(path).write_text('\n'.join(lines) + '\n')


def service_program(name):
    """A program of the service's runtime environment (gunicorn, uwsgi)."""
    path = SERVICE_BIN_DIR / name
    if not os.access(path, os.X_OK):
        raise StackError(f'{path} is missing: run tools/bootstrap.sh, which '
                         f'installs the service into {SERVICE_VENV}')
    return path


def service_env():
    """This process's environment, but for what would make a program of the
    service's runtime environment import from the tools' one."""
    env = dict(os.environ)
    for var in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME'):
        env.pop(var, None)
    return env


def start_gunicorn(name, conf_path, workdir, extra_env=None, service=False):
    """Start gunicorn detached with only ``--config`` (via the env).

    ``service=True`` runs it from the service's runtime environment (for
    compute-api); otherwise from this one (Keystone, Glance).
    """
    env = service_env() if service else dict(os.environ)
    env.update(extra_env or {})
    env['GUNICORN_CMD_ARGS'] = f'--config {conf_path}'
    log_path = pathlib.Path(workdir) / 'logs' / f'{name}.log'
    if service:
        pid = spawn([service_program('gunicorn')], log_path, env, cwd=workdir)
    else:
        pid = spawn([BIN_DIR / 'gunicorn'], log_path, env)
    write_pid_file(workdir, name, pid)
    return pid


def write_pid_file(workdir, name, pid):
    """Record ``pid`` so that ``down`` finds it even if ``up`` failed."""
    pids = pathlib.Path(workdir) / 'pids'
    pids.mkdir(exist_ok=True)
    (pids / f'{name}.pid').write_text(f'{pid}\n')


def read_pid_files(workdir):
    """Return ``{name: pid}`` from ``<workdir>/pids/*.pid``."""
    found = {}
    for path in sorted((pathlib.Path(workdir) / 'pids').glob('*.pid')):
        try:
            found[path.stem] = int(path.read_text().strip())
        except ValueError:
            continue
    return found

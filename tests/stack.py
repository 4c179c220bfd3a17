"""A throw-away OpenStack stack on loopback for compute-api.

``python -m tests.stack up|down|status [--workdir DIR]`` (or ``tools/stack``)
starts, on free ports of 127.0.0.1 only:

* memcached (Keystone's cache and the ``auth_token`` token caches),
* Keystone under gunicorn (sqlite, fernet tokens, one sync worker: sqlite
  answers concurrent token issues with "database is locked"),
* Glance under gunicorn (sqlite, file store, one sync worker: Glance on
  sqlite answers concurrent writes with "database is locked"),
* compute-api under gunicorn (``compute_api.wsgi.api:application``), run as
  the install guide has operators run it: from its own virtual environment
  holding only the package and its runtime requirements (``.venv-service``,
  made by ``tools/bootstrap.sh``), with the shipped gunicorn example
  configuration and the guide's recommended options (an encrypted token
  cache in memcached, ``service_type = compute``, a service user with only
  the ``service`` role).

It then creates the projects, users, roles, services and endpoints that the
functional tests rely on, uploads a sample image owned by project ``demo``
and writes everything a client needs (URLs, ports, passwords, ids, PIDs) to
``<workdir>/stack.json``.  Every service runs detached in its own session and
process group, logs under ``<workdir>/logs/`` and has a PID file under
``<workdir>/pids/``; ``down`` stops them all.

The module is also the library the functional tests use: ``Stack``,
``load_state``, ``start_compute_api``, ``stop_process``, ``get_session``,
``glance_image``, ``create_image`` and ``set_image``.

Two things every gunicorn here relies on: Keystone's config loader parses the
process's command line, so gunicorn is started with no arguments at all and
reads a config file named in ``GUNICORN_CMD_ARGS``; and gunicorn's control
socket (one per user by default) is disabled so that servers do not collide.
"""

import argparse
import concurrent.futures
import configparser
import grp
import importlib.metadata
import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

HOST = '127.0.0.1'
REGION = 'RegionOne'
DEFAULT_DOMAIN = 'Default'
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = REPO_ROOT / '.stack'
STATE_FILE = 'stack.json'
BIN_DIR = pathlib.Path(sys.executable).parent
# The service's own runtime environment (tools/bootstrap.sh makes it).
SERVICE_VENV = pathlib.Path(os.environ.get(
    'COMPUTE_API_SERVICE_VENV', REPO_ROOT / '.venv-service'))
SERVICE_BIN_DIR = SERVICE_VENV / 'bin'
EXAMPLES_DIR = REPO_ROOT / 'etc' / 'compute_api'

KEYSTONE_APP = 'keystone.wsgi.api:application'
GLANCE_APP = 'glance.wsgi.api:application'
COMPUTE_APP = 'compute_api.wsgi.api:application'
COMPUTE_CONFIG_ENV = 'OS_COMPUTE_API_CONFIG_DIR'

SERVICE_START_TIMEOUT = 60
COMPUTE_START_TIMEOUT = 20
STOP_TIMEOUT = 10

# Directories and files under the workdir that belong to one stack; a fresh
# ``up`` replaces them.  Extra compute-api instances may not use these names.
STACK_PATHS = ('keystone', 'glance', 'compute', 'logs', 'pids', STATE_FILE)

# Roles created by ``keystone-manage bootstrap``: reader, member, manager,
# admin, service.  ``observer`` is ours: a role that grants nothing.
EXTRA_ROLES = ('observer',)
PROJECTS = ('service', 'demo', 'alt')
USERS = {
    # name: (project, roles on that project)
    'glance': ('service', ('service',)),
    'compute': ('service', ('service',)),
    'demo-member': ('demo', ('member',)),
    'demo-reader': ('demo', ('reader',)),
    'demo-admin': ('demo', ('admin',)),
    'demo-norole': ('demo', ('observer',)),
    'alt-member': ('alt', ('member',)),
    'alt-reader': ('alt', ('reader',)),
    'alt-admin': ('alt', ('admin',)),
    'alt-norole': ('alt', ('observer',)),
}
SERVICES = (
    # (type, name, state key of the endpoint URL)
    ('image', 'glance', 'glance_url'),
    ('compute', 'compute-api', 'compute_endpoint'),
)
INTERFACES = ('public', 'internal', 'admin')

SAMPLE_IMAGE_NAME = 'cirros-sample'
SAMPLE_IMAGE_OWNER = 'demo-member'
SAMPLE_IMAGE_DATA = (b'compute-api sample image, not a real disk\n' * 100)

PROCESS_MARKERS = ('gunicorn', 'memcached', 'uwsgi')


class StackError(Exception):
    """The stack could not be started, reached or stopped."""


# --------------------------------------------------------------------------
# Processes


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


def _first_exception(lines):
    """The exception line ending the first traceback in ``lines``."""
    in_traceback = False
    for line in lines:
        if line.startswith('Traceback (most recent call last):'):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            return line
    return None


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
                             f'{url}; end of {log_path}:\n'
                             f'{log_tail(log_path)}')
        status = answer_status(url)
        if status is not None and status < 500:
            return
        if time.monotonic() > deadline:
            raise StackError(f'{name} did not answer {url} within {timeout}s '
                             f'(last status {status}); end of {log_path}:\n'
                             f'{log_tail(log_path)}')
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
                         f'(exit {result.returncode}); end of {log_path}:\n'
                         f'{log_tail(log_path)}')


# --------------------------------------------------------------------------
# Configuration files


def write_ini(path, sections):
    """Write ``{section: {option: value}}`` as an ini file."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict({s: {k: str(v) for k, v in opts.items()}
                      for s, opts in sections.items()})
    with open(path, 'w') as f:
        parser.write(f)


def read_ini(path):
    """Read an ini file back as ``{section: {option: value}}``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    sections = {'DEFAULT': dict(parser.defaults())}
    for name in parser.sections():
        sections[name] = {k: v for k, v in parser.items(name)
                          if k not in parser.defaults()}
    return sections


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


def write_compute_gunicorn_conf(path, *, port, workers, log_name, workdir):
    """A gunicorn config for compute-api: the shipped example, as the
    install guide has operators copy it, with only the stack's own places
    (port, worker count, logs) changed."""
    logs = pathlib.Path(workdir) / 'logs'
    example = EXAMPLES_DIR / 'gunicorn.conf.py.example'
    settings = {
        'bind': f'{HOST}:{port}',
        'workers': workers,
        'graceful_timeout': 5,
        'control_socket_disable': True,
        'chdir': str(workdir),
        'proc_name': log_name,
        'errorlog': str(logs / f'{log_name}.log'),
    }
    lines = [f'exec(open({str(example)!r}).read())']
    lines += [f'{key} = {value!r}' for key, value in settings.items()]
    pathlib.Path(path).write_text('\n'.join(lines) + '\n')


def service_program(name):
    """A program of the service's runtime environment (gunicorn, uwsgi)."""
    path = SERVICE_BIN_DIR / name
    if not os.access(path, os.X_OK):
        raise StackError(f'{path} is missing: run tools/bootstrap.sh, which '
                         f'installs the service into {SERVICE_VENV}')
    return path


def start_gunicorn(name, conf_path, workdir, extra_env=None, service=False):
    """Start gunicorn detached with only ``--config`` (via the env).

    ``service=True`` runs it from the service's runtime environment (for
    compute-api); otherwise from this one (Keystone, Glance).
    """
    env = dict(os.environ)
    if service:
        # Nothing of the tools' environment leaks into the service's.
        for var in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME'):
            env.pop(var, None)
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


def glance_paste_ini():
    """Path of the glance-api-paste.ini installed with the glance package."""
    for file in importlib.metadata.distribution('glance').files or ():
        if file.name == 'glance-api-paste.ini':
            return pathlib.Path(file.locate())
    raise StackError('glance-api-paste.ini is not installed with glance')


def authtoken_options(state, user_name):
    """``[keystone_authtoken]`` for a service user of project ``service``."""
    return {
        'www_authenticate_uri': state['keystone_url'],
        'auth_url': state['keystone_url'],
        'auth_type': 'password',
        'username': user_name,
        'password': state['users'][user_name]['password'],
        'project_name': 'service',
        'user_domain_name': DEFAULT_DOMAIN,
        'project_domain_name': DEFAULT_DOMAIN,
        'region_name': REGION,
        'memcached_servers': state['memcached'],
    }


def compute_conf_sections(state, log_name='compute-api-app'):
    """The compute_api.conf of this stack as ``{section: {option: value}}``:
    the install guide's recommended configuration, with the stack's own
    addresses and secrets."""
    authtoken = authtoken_options(state, 'compute')
    authtoken.update({
        'service_type': 'compute',
        'memcache_security_strategy': 'ENCRYPT',
        'memcache_secret_key': state['memcache_secret_key'],
    })
    return {
        'DEFAULT': {
            'debug': 'False',
            'log_file': f'{state["workdir"]}/logs/{log_name}.log',
        },
        'keystone_authtoken': authtoken,
        'glance': {'region_name': REGION, 'valid_interfaces': 'public'},
        'oslo_policy': {'policy_file': 'policy.yaml'},
    }


def write_compute_config(config_dir, sections, policy_yaml=None):
    """Write compute_api.conf and policy.yaml into ``config_dir``."""
    config_dir = pathlib.Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    write_ini(config_dir / 'compute_api.conf', sections)
    if policy_yaml is None:
        policy_yaml = '# No overrides: the policy defaults apply.\n{}\n'
    (config_dir / 'policy.yaml').write_text(policy_yaml)


# --------------------------------------------------------------------------
# State


def load_state(workdir_or_json_path):
    """Load a stack's state from its workdir or its stack.json."""
    path = pathlib.Path(workdir_or_json_path)
    if path.is_dir():
        path = path / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StackError(f'no stack state at {path}: run '
                         '"tools/stack up" (or python -m tests.stack up)')


def save_state(state):
    """Write ``state`` to ``<workdir>/stack.json`` atomically, mode 0600."""
    path = pathlib.Path(state['workdir']) / STATE_FILE
    tmp = path.with_suffix('.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        json.dump(state, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)


def process_status(state):
    """Return ``{name: pid or None}`` (None: not running).

    Lists the stack's own services, and the extra compute-api instances
    (or services of an interrupted ``up``) of the workdir still running.
    """
    status = {name: pid if is_stack_process(pid) else None
              for name, pid in state.get('pids', {}).items()}
    for name, pid in read_pid_files(state['workdir']).items():
        if name not in status and is_stack_process(pid):
            status[name] = pid
    return dict(sorted(status.items()))


def new_state(workdir):
    """Plan a stack: ports, URLs and random passwords; nothing started."""
    names = ('memcached', 'keystone', 'glance', 'compute')
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    compute_url = f'http://{HOST}:{ports["compute"]}'
    users = {name: {'password': secrets.token_urlsafe(18),
                    'project_name': project, 'roles': list(roles)}
             for name, (project, roles) in USERS.items()}
    users['admin'] = {'password': secrets.token_urlsafe(18),
                      'project_name': 'admin', 'roles': ['admin']}
    workdir = pathlib.Path(workdir)
    return {
        'workdir': str(workdir),
        'region': REGION,
        'ports': ports,
        'memcached': f'{HOST}:{ports["memcached"]}',
        'keystone_url': f'http://{HOST}:{ports["keystone"]}/v3',
        'glance_url': f'http://{HOST}:{ports["glance"]}',
        'compute_url': compute_url,
        'compute_endpoint': f'{compute_url}/v2.1',
        'compute_config_dir': str(workdir / 'compute'),
        'memcache_secret_key': secrets.token_hex(32),
        'users': users,
        'projects': {},
        'pids': {},
        'sample_image_id': None,
    }


# --------------------------------------------------------------------------
# Keystone and Glance clients


def get_session(state, user_name):
    """A keystoneauth1 session for ``user_name``, scoped to its project."""
    try:
        user = state['users'][user_name]
    except KeyError:
        raise StackError(f'unknown stack user {user_name!r}; known: '
                         f'{", ".join(sorted(state["users"]))}')
    auth = v3.Password(auth_url=state['keystone_url'], username=user_name,
                       password=user['password'],
                       user_domain_name=DEFAULT_DOMAIN,
                       project_name=user['project_name'],
                       project_domain_name=DEFAULT_DOMAIN)
    return ks_session.Session(auth=auth)


def _glance(state, session, method, path, **kwargs):
    """A request straight to Glance; returns the response, never raises."""
    headers = {'Accept': 'application/json', **kwargs.pop('headers', {})}
    return session.request(state['glance_url'] + path, method,
                           headers=headers, raise_exc=False, **kwargs)


def _check(response, what):
    if response.status_code >= 400:
        raise StackError(f'{what}: HTTP {response.status_code} '
                         f'{response.text[:300]}')
    return response


def glance_image(state, session, image_id):
    """GET /v2/images/{id} from Glance: the image, or None on 404."""
    response = _glance(state, session, 'GET', f'/v2/images/{image_id}')
    if response.status_code == 404:
        return None
    return _check(response, f'GET image {image_id}').json()


def create_image(state, session, **props):
    """Create an image in Glance and return its id.

    Defaults: name ``test-image``, disk_format raw, container_format bare.
    ``data=b'...'`` uploads data too and waits for the image to be active;
    other keyword arguments are image properties (``visibility='public'``,
    ``protected=True``, ...).
    """
    data = props.pop('data', None)
    body = {'name': 'test-image', 'disk_format': 'raw',
            'container_format': 'bare', **props}
    response = _glance(state, session, 'POST', '/v2/images', json=body)
    image_id = _check(response, 'create image').json()['id']
    if data is not None:
        response = _glance(state, session, 'PUT',
                           f'/v2/images/{image_id}/file', data=data,
                           headers={'Content-Type':
                                    'application/octet-stream'})
        _check(response, f'upload image {image_id}')
        _wait_image_status(state, session, image_id, 'active')
    return image_id


def _wait_image_status(state, session, image_id, status, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        image = glance_image(state, session, image_id)
        current = image and image['status']
        if current == status:
            return
        if time.monotonic() > deadline or current in ('killed', None):
            raise StackError(f'image {image_id} is {current}, not {status}')
        time.sleep(0.1)


def set_image(state, session, image_id, **props):
    """Replace image properties in Glance (e.g. ``protected=False``)."""
    patch = [{'op': 'replace', 'path': f'/{key}', 'value': value}
             for key, value in props.items()]
    content_type = 'application/openstack-images-v2.1-json-patch'
    response = _glance(state, session, 'PATCH', f'/v2/images/{image_id}',
                       data=json.dumps(patch),
                       headers={'Content-Type': content_type})
    return _check(response, f'update image {image_id}').json()


def _keystone(state, session, method, path, body=None):
    """A Keystone API call as admin; returns the decoded JSON body."""
    response = session.request(state['keystone_url'] + path, method,
                               json=body, raise_exc=True)
    return response.json() if response.content else {}


# --------------------------------------------------------------------------
# Extra compute-api instances


def start_compute_api(state, name, conf_overrides=None, workers=1,
                      policy_yaml=None):
    """Start an extra compute-api with its own config dir and port.

    The config is the stack's compute_api.conf with ``conf_overrides``
    (``{section: {option: value}}``) applied; ``policy_yaml`` is written to
    its policy.yaml.  Returns ``{'url', 'pid', 'config_dir'}``; stop it with
    ``stop_process(pid)`` (``down`` stops it too).
    """
    if not name or name in STACK_PATHS or '/' in name or name[0] == '.':
        raise ValueError(f'invalid compute-api instance name {name!r}')
    workdir = pathlib.Path(state['workdir'])
    config_dir = workdir / name
    sections = read_ini(pathlib.Path(state['compute_config_dir'])
                        / 'compute_api.conf')
    sections['DEFAULT']['log_file'] = str(workdir / 'logs' / f'{name}-app.log')
    for section, options in (conf_overrides or {}).items():
        sections.setdefault(section, {}).update(
            {key: str(value) for key, value in options.items()})
    write_compute_config(config_dir, sections, policy_yaml)
    port = free_ports(1)[0]
    write_compute_gunicorn_conf(config_dir / 'gunicorn.conf.py', port=port,
                                workers=workers, log_name=name,
                                workdir=workdir)
    pid = start_gunicorn(name, config_dir / 'gunicorn.conf.py', workdir,
                         {COMPUTE_CONFIG_ENV: str(config_dir)}, service=True)
    url = f'http://{HOST}:{port}'
    try:
        wait_http(name, url + '/', pid, workdir / 'logs' / f'{name}.log',
                  COMPUTE_START_TIMEOUT)
    except BaseException:
        stop_process(pid)
        raise
    return {'url': url, 'pid': pid, 'config_dir': str(config_dir)}


def restart_glance(state):
    """Stop Glance and start it again on the same port, data and config.

    Returns ``(stopped_at, ready_at)`` (``time.monotonic()`` values): the
    window in which Glance did not answer. The new PID is saved in the
    state and in stack.json.
    """
    workdir = pathlib.Path(state['workdir'])
    base = workdir / 'glance'
    stop_process(state['pids']['glance'])
    stopped_at = time.monotonic()
    pid = start_gunicorn('glance', base / 'gunicorn.conf.py', workdir,
                         {'OS_GLANCE_CONFIG_DIR': str(base)})
    state['pids']['glance'] = pid
    save_state(state)
    wait_http('glance', state['glance_url'] + '/healthcheck', pid,
              workdir / 'logs' / 'glance.log', SERVICE_START_TIMEOUT)
    return stopped_at, time.monotonic()


# --------------------------------------------------------------------------
# The stack


class Stack:
    """One stack of memcached, Keystone, Glance and compute-api."""

    def __init__(self, workdir=DEFAULT_WORKDIR, compute_workers=2):
        self.workdir = pathlib.Path(workdir).resolve()
        self.compute_workers = compute_workers
        self.register_compute = True
        self.state = {}
        if (self.workdir / STATE_FILE).exists():
            self.state = load_state(self.workdir)

    @property
    def logs(self):
        return self.workdir / 'logs'

    def running(self):
        """``{name: pid}`` of this workdir's processes still running."""
        status = process_status({'workdir': str(self.workdir),
                                 'pids': self.state.get('pids', {})})
        return {name: pid for name, pid in status.items() if pid}

    def up(self, start_compute=True, register_compute=True):
        """Start the stack and return its state (also in stack.json).

        ``register_compute=False`` (which implies no compute-api either)
        leaves the catalog without a ``compute`` service: a cloud with only
        Keystone and Glance, where the install guide starts.
        """
        self.register_compute = register_compute
        start_compute = start_compute and register_compute
        running = self.running()
        if running:
            raise StackError(f'a stack is already running in {self.workdir}'
                             f' ({", ".join(running)}); run "down" first')
        self._reset_workdir()
        self.state = new_state(self.workdir)
        try:
            self._start(start_compute)
        except BaseException:
            self.down()
            raise
        save_state(self.state)
        return self.state

    def down(self):
        """Stop every process of this stack; returns ``{name: pid}``."""
        stopped = {}
        for name, pid in self.running().items():
            if stop_process(pid):
                stopped[name] = pid
        return stopped

    def _reset_workdir(self):
        """Remove what a previous stack left here (not the workdir)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in STACK_PATHS:
            path = self.workdir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for name in ('logs', 'logs/setup', 'pids', 'keystone', 'glance'):
            (self.workdir / name).mkdir()

    def _start(self, start_compute):
        """Start everything, in parallel where the order allows."""
        self._write_keystone_config()
        self._write_glance_config()
        write_compute_config(self.state['compute_config_dir'],
                             compute_conf_sections(self.state))
        self._start_memcached()
        if start_compute:
            self._start_compute()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            glance = pool.submit(self._setup_glance)
            keys = pool.submit(self._setup_keystone_keys)
            self._setup_keystone_db()
            keys.result()
            self._start_keystone()
            self._create_identities()
            glance.result()
        self._upload_sample_image()
        if start_compute:
            wait_http('compute-api', self.state['compute_url'] + '/',
                      self.state['pids']['compute-api'],
                      self.logs / 'compute-api.log', COMPUTE_START_TIMEOUT)

    def _record(self, name, pid):
        self.state['pids'][name] = pid
        write_pid_file(self.workdir, name, pid)

    def _start_memcached(self):
        memcached = shutil.which('memcached')
        if not memcached:
            raise StackError('memcached is not installed: run '
                             'tools/bootstrap.sh')
        port = self.state['ports']['memcached']
        argv = [memcached, '-l', HOST, '-p', port, '-U', '0', '-m', '64']
        if os.geteuid() == 0:
            argv += ['-u', 'root']
        pid = spawn(argv, self.logs / 'memcached.log', dict(os.environ))
        self._record('memcached', pid)
        wait_tcp('memcached', port)

    # Keystone ------------------------------------------------------------

    def _write_keystone_config(self):
        base = self.workdir / 'keystone'
        write_ini(base / 'keystone.conf', {
            'DEFAULT': {'debug': 'False',
                        'log_file': self.logs / 'keystone-app.log'},
            'database': {'connection': f'sqlite:///{base}/keystone.db'},
            'token': {'provider': 'fernet'},
            'fernet_tokens': {'key_repository': base / 'fernet-keys'},
            # Defaults to /etc/keystone/fernet-keys/ otherwise, and
            # fernet_setup would create it there.
            'fernet_receipts': {'key_repository': base / 'receipt-keys'},
            'credential': {'key_repository': base / 'credential-keys'},
            'cache': {'enabled': 'True',
                      'backend': 'oslo_cache.memcache_pool',
                      'memcache_servers': self.state['memcached']},
            'identity': {'password_hash_rounds': '4'},
        })
        write_gunicorn_conf(base / 'gunicorn.conf.py', app=KEYSTONE_APP,
                            port=self.state['ports']['keystone'], workers=1,
                            log_name='keystone', workdir=self.workdir)

    def _keystone_manage(self, *args, env=None):
        conf = self.workdir / 'keystone' / 'keystone.conf'
        log = self.logs / 'setup' / f'keystone-manage-{args[0]}.log'
        run_command([BIN_DIR / 'keystone-manage', '--config-file', conf,
                     *args], log, env=env, cwd=self.workdir)

    def _setup_keystone_keys(self):
        owner = ['--keystone-user', pwd.getpwuid(os.getuid()).pw_name,
                 '--keystone-group', grp.getgrgid(os.getgid()).gr_name]
        self._keystone_manage('fernet_setup', *owner)
        self._keystone_manage('credential_setup', *owner)

    def _setup_keystone_db(self):
        self._keystone_manage('db_sync')
        url = self.state['keystone_url']
        env = dict(os.environ,
                   OS_BOOTSTRAP_PASSWORD=self.state['users']['admin'][
                       'password'])
        self._keystone_manage(
            'bootstrap', '--bootstrap-username', 'admin',
            '--bootstrap-project-name', 'admin',
            '--bootstrap-role-name', 'admin',
            '--bootstrap-region-id', REGION,
            '--bootstrap-admin-url', url, '--bootstrap-internal-url', url,
            '--bootstrap-public-url', url, env=env)

    def _start_keystone(self):
        base = self.workdir / 'keystone'
        pid = start_gunicorn('keystone', base / 'gunicorn.conf.py',
                             self.workdir,
                             {'OS_KEYSTONE_CONFIG_DIR': str(base)})
        self._record('keystone', pid)
        wait_http('keystone', self.state['keystone_url'], pid,
                  self.logs / 'keystone.log', SERVICE_START_TIMEOUT)

    def _create_identities(self):
        """Projects, roles, users and the catalog, over Keystone's API."""
        admin = get_session(self.state, 'admin')
        users = self.state['users']
        users['admin']['user_id'] = admin.get_user_id()
        users['admin']['project_id'] = admin.get_project_id()
        projects = {'admin': users['admin']['project_id']}
        for name in PROJECTS:
            projects[name] = self._post(admin, 'projects', {
                'name': name, 'domain_id': 'default'})
        roles = {role['name']: role['id'] for role in
                 _keystone(self.state, admin, 'GET', '/roles')['roles']}
        for name in EXTRA_ROLES:
            roles[name] = self._post(admin, 'roles', {'name': name})
        self.state['projects'] = projects
        for name in USERS:
            self._create_user(admin, name, projects, roles)
        # admin also holds its role on the default domain, so that it can
        # get a domain-scoped token, as a cloud's operators do.
        _keystone(self.state, admin, 'PUT',
                  f'/domains/default/users/{users["admin"]["user_id"]}'
                  f'/roles/{roles["admin"]}')
        self._register_services(admin)

    def _post(self, session, collection, body):
        """POST a Keystone resource; returns its id."""
        key = collection[:-1]
        reply = _keystone(self.state, session, 'POST', f'/{collection}',
                          {key: body})
        return reply[key]['id']

    def _create_user(self, admin, name, projects, roles):
        user = self.state['users'][name]
        project_id = projects[user['project_name']]
        user['project_id'] = project_id
        user['user_id'] = self._post(admin, 'users', {
            'name': name, 'password': user['password'],
            'domain_id': 'default', 'default_project_id': project_id})
        for role in user['roles']:
            _keystone(self.state, admin, 'PUT',
                      f'/projects/{project_id}/users/{user["user_id"]}'
                      f'/roles/{roles[role]}')

    def _register_services(self, admin):
        for service_type, name, url_key in SERVICES:
            if service_type == 'compute' and not self.register_compute:
                continue
            service_id = self._post(admin, 'services', {
                'type': service_type, 'name': name})
            for interface in INTERFACES:
                self._post(admin, 'endpoints', {
                    'service_id': service_id, 'interface': interface,
                    'region_id': REGION, 'url': self.state[url_key]})

    # Glance --------------------------------------------------------------

    def _write_glance_config(self):
        base = self.workdir / 'glance'
        shutil.copyfile(glance_paste_ini(), base / 'glance-api-paste.ini')
        write_ini(base / 'glance-api.conf', {
            'DEFAULT': {'debug': 'False',
                        'log_file': self.logs / 'glance-app.log',
                        'enabled_backends': 'local:file'},
            'database': {'connection': f'sqlite:///{base}/glance.db'},
            'glance_store': {'default_backend': 'local'},
            'local': {'filesystem_store_datadir': base / 'images'},
            'os_glance_staging_store': {
                'filesystem_store_datadir': base / 'staging'},
            'os_glance_tasks_store': {
                'filesystem_store_datadir': base / 'tasks'},
            'oslo_concurrency': {'lock_path': base / 'locks'},
            'paste_deploy': {'flavor': 'keystone',
                             'config_file': base / 'glance-api-paste.ini'},
            # As a real cloud configures it: Glance can then check the
            # access rules of application credentials, and accepts a
            # token restricted to another service in a call that
            # service makes on the caller's behalf (with its service
            # token).
            'keystone_authtoken': dict(
                authtoken_options(self.state, 'glance'),
                service_type='image'),
        })
        # One worker: Glance on sqlite fails concurrent writes.
        write_gunicorn_conf(base / 'gunicorn.conf.py', app=GLANCE_APP,
                            port=self.state['ports']['glance'], workers=1,
                            log_name='glance', workdir=self.workdir)

    def _setup_glance(self):
        base = self.workdir / 'glance'
        run_command([BIN_DIR / 'glance-manage', '--config-file',
                     base / 'glance-api.conf', 'db_sync'],
                    self.logs / 'setup' / 'glance-manage-db_sync.log',
                    cwd=self.workdir)
        pid = start_gunicorn('glance', base / 'gunicorn.conf.py',
                             self.workdir,
                             {'OS_GLANCE_CONFIG_DIR': str(base)})
        self._record('glance', pid)
        wait_http('glance', self.state['glance_url'] + '/healthcheck', pid,
                  self.logs / 'glance.log', SERVICE_START_TIMEOUT)

    def _upload_sample_image(self):
        session = get_session(self.state, SAMPLE_IMAGE_OWNER)
        self.state['sample_image_id'] = create_image(
            self.state, session, name=SAMPLE_IMAGE_NAME,
            visibility='private', data=SAMPLE_IMAGE_DATA)

    # compute-api ---------------------------------------------------------

    def _start_compute(self):
        config_dir = pathlib.Path(self.state['compute_config_dir'])
        write_compute_gunicorn_conf(config_dir / 'gunicorn.conf.py',
                                    port=self.state['ports']['compute'],
                                    workers=self.compute_workers,
                                    log_name='compute-api',
                                    workdir=self.workdir)
        pid = start_gunicorn('compute-api', config_dir / 'gunicorn.conf.py',
                             self.workdir,
                             {COMPUTE_CONFIG_ENV: str(config_dir)},
                             service=True)
        self._record('compute-api', pid)


# --------------------------------------------------------------------------
# Command line


def _stop_command(state, default_workdir=DEFAULT_WORKDIR):
    down = 'tools/stack down'
    if pathlib.Path(state['workdir']) != pathlib.Path(default_workdir):
        down += f' --workdir {state["workdir"]}'
    return down


def cloud_instructions(state):
    """What a stack without compute-api offers (``up --no-compute``)."""
    admin = state['users']['admin']
    return f"""\
Endpoints (region {state['region']}; no compute service is registered):
  keystone     {state['keystone_url']}
  glance       {state['glance_url']}
  memcached    {state['memcached']}
Admin credentials: user admin, password {admin['password']}, project admin,
domain {DEFAULT_DOMAIN}. State, passwords and ids: \
{state['workdir']}/{STATE_FILE}
Logs: {state['workdir']}/logs/

Stop the stack: {_stop_command(state)}"""


def instructions(state, default_workdir=DEFAULT_WORKDIR):
    """Human instructions: endpoints, a token, a delete, and how to stop."""
    user = state['users'][SAMPLE_IMAGE_OWNER]
    image_id = state['sample_image_id']
    auth = json.dumps({'auth': {
        'identity': {'methods': ['password'], 'password': {'user': {
            'name': SAMPLE_IMAGE_OWNER, 'domain': {'name': DEFAULT_DOMAIN},
            'password': user['password']}}},
        'scope': {'project': {'name': user['project_name'],
                              'domain': {'name': DEFAULT_DOMAIN}}}}})
    down = _stop_command(state, default_workdir)
    workdir_arg = ''
    if pathlib.Path(state['workdir']) != pathlib.Path(default_workdir):
        workdir_arg = f' --workdir {state["workdir"]}'
    return f"""\
Endpoints (region {state['region']}):
  keystone     {state['keystone_url']}
  glance       {state['glance_url']}
  compute-api  {state['compute_endpoint']}
  memcached    {state['memcached']}
State, passwords and ids: {state['workdir']}/{STATE_FILE}
Logs: {state['workdir']}/logs/

Delete the sample image ({SAMPLE_IMAGE_NAME}, {image_id}) as \
{SAMPLE_IMAGE_OWNER} with curl:
  TOKEN=$(curl -s -o /dev/null -D - {state['keystone_url']}/auth/tokens \\
    -H 'Content-Type: application/json' \\
    -d '{auth}' \\
    | awk 'tolower($1) == "x-subject-token:" {{print $2}}' | tr -d '\\r')
  curl -i -X DELETE {state['compute_endpoint']}/images/{image_id} \\
    -H "X-Auth-Token: $TOKEN"

or with openstacksdk (.venv/bin/python; once one of the two has deleted
the image, the other answers 404, with openstacksdk ResourceNotFound):
  import openstack
  conn = openstack.connect(
      auth_url='{state['keystone_url']}', username='{SAMPLE_IMAGE_OWNER}',
      password='{user['password']}', project_name='{user['project_name']}',
      user_domain_name='Default', project_domain_name='Default',
      region_name='{state['region']}')
  conn.compute.delete_image('{image_id}', ignore_missing=False)

Verify it with tempest and compute-api's plugin (doc/source/verify.rst):
  .venv/bin/python -m tests.tempest_run{workdir_arg}
That writes a tempest workspace in {state['workdir']}/tempest and runs, in it,
  tempest run --regex '^compute_api_tempest_plugin\\.'
(tempest is .venv/bin/tempest; with --nova the same tests run against
Nova's API with compute-api's filter.)

Stop the stack: {down}"""


def _cmd_up(stack, args):
    running = stack.running()
    if running and set(running) >= set(stack.state.get('pids', {})):
        print(f'A stack is already running in {stack.workdir}.\n')
        print(instructions(stack.state)
              if 'compute-api' in stack.state.get('pids', {})
              else cloud_instructions(stack.state))
        return 0
    if running:
        print(f'A stack in {stack.workdir} is partly running '
              f'({", ".join(running)}): run "down" first.', file=sys.stderr)
        return 1
    started = time.monotonic()
    state = stack.up(register_compute=not args.no_compute)
    print(f'Stack up in {time.monotonic() - started:.1f}s'
          f'{" (without compute-api)" if args.no_compute else ""}.\n')
    print(cloud_instructions(state) if args.no_compute
          else instructions(state))
    return 0


def _cmd_down(stack, args):
    stopped = stack.down()
    for name, pid in sorted(stopped.items()):
        print(f'stopped {name} (pid {pid})')
    if not stopped:
        print(f'nothing running in {stack.workdir}')
    return 0


def _cmd_status(stack, args):
    if not stack.state:
        print(f'no stack in {stack.workdir}')
        return 1
    status = process_status(stack.state)
    for name, pid in status.items():
        state = f'running (pid {pid})' if pid else 'not running'
        print(f'{name:<12} {state}')
    return 0 if all(status.values()) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tests.stack',
        description='Run Keystone, Glance and compute-api on 127.0.0.1.')
    parser.add_argument('command', nargs='?', default='up',
                        choices=('up', 'down', 'status'))
    parser.add_argument('--workdir', default=str(DEFAULT_WORKDIR),
                        help='state, config, data and logs '
                             '(default: %(default)s)')
    parser.add_argument('--no-compute', action='store_true',
                        help='up: Keystone and Glance only, with no compute '
                             'service in the catalog (a cloud where the '
                             'install guide starts)')
    parser.add_argument('--compute-workers', type=int, default=2,
                        help='up: compute-api gunicorn workers')
    args = parser.parse_args(argv)
    stack = Stack(args.workdir, compute_workers=args.compute_workers)
    command = {'up': _cmd_up, 'down': _cmd_down, 'status': _cmd_status}
    try:
        return command[args.command](stack, args)
    except StackError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())

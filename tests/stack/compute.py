"""compute-api under uWSGI or gunicorn, as the install guide has operators
run it.

From its own virtual environment holding only the package and its runtime
requirements (``.venv-service``, made by ``tools/bootstrap.sh``), with the
shipped example configuration of the server (``uwsgi.ini.example``, the
default, or ``gunicorn.conf.py.example``) and the guide's recommended
options (an encrypted token cache in memcached, ``service_type = compute``,
a service user with only the ``service`` role).
"""

import configparser
import pathlib

from tests.stack.common import COMPUTE_CONFIG_ENV
from tests.stack.common import COMPUTE_START_TIMEOUT
from tests.stack.common import EXAMPLES_DIR
from tests.stack.common import HOST
from tests.stack.common import REGION
from tests.stack.common import SERVICE_VENV
from tests.stack.common import STACK_PATHS
from tests.stack.config import read_ini
from tests.stack.config import write_ini
from tests.stack.keystone import authtoken_options
from tests.stack.processes import free_ports
from tests.stack.processes import service_env
from tests.stack.processes import service_program
from tests.stack.processes import spawn
from tests.stack.processes import start_gunicorn
from tests.stack.processes import stop_process
from tests.stack.processes import wait_http
from tests.stack.processes import write_pid_file
from tests.stack.state import save_state

# The WSGI servers the stack can run compute-api under; the default is the
# one the benchmarks found to cost the least CPU per request
# (benchmarks/README.rst, "The WSGI server, side by side").
SERVERS = ('uwsgi', 'gunicorn')
DEFAULT_SERVER = 'uwsgi'


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


def write_compute_uwsgi_ini(path, *, port, workers, log_name, workdir,
                            config_dir, extra=None):
    """A uwsgi config for compute-api: the shipped example, as the install
    guide has operators copy it, with only the stack's own places (port,
    worker count, logs, directories) changed. uwsgi from PyPI, in the
    service's environment, has Python built in: no plugin line."""
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       inline_comment_prefixes=(';',))
    parser.read(EXAMPLES_DIR / 'uwsgi.ini.example')
    settings = dict(parser['uwsgi'])
    settings.pop('plugins', None)
    settings.update({
        'virtualenv': str(SERVICE_VENV),
        'http-socket': f'{HOST}:{port}',
        'processes': str(workers),
        'chdir': str(workdir),
        'logto': str(pathlib.Path(workdir) / 'logs' / f'{log_name}.log'),
        'env': f'{COMPUTE_CONFIG_ENV}={config_dir}',
    })
    settings.update(extra or {})
    pathlib.Path(path).write_text('[uwsgi]\n' + ''.join(
        f'{key} = {value}\n' for key, value in settings.items()))


def start_compute_server(server, name, config_dir, *, port, workers,
                         workdir, extra=None):
    """Start compute-api ``name`` under ``server`` (one of ``SERVERS``) from
    the service's runtime environment, with ``config_dir``'s
    compute_api.conf; returns the server's master PID (not waiting).
    ``extra``: settings of the server's configuration file to change."""
    config_dir = pathlib.Path(config_dir)
    if server == 'gunicorn':
        conf = config_dir / 'gunicorn.conf.py'
        write_compute_gunicorn_conf(conf, port=port, workers=workers,
                                    log_name=name, workdir=workdir)
        with open(conf, 'a') as f:
            f.write(''.join(f'{key} = {value!r}\n'
                            for key, value in (extra or {}).items()))
        return start_gunicorn(name, config_dir / 'gunicorn.conf.py',
                              workdir, {COMPUTE_CONFIG_ENV: str(config_dir)},
                              service=True)
    if server != 'uwsgi':
        raise ValueError(f'unknown WSGI server {server!r}')
    ini = config_dir / 'uwsgi.ini'
    write_compute_uwsgi_ini(ini, port=port, workers=workers, log_name=name,
                            workdir=workdir, config_dir=config_dir,
                            extra=extra)
    # uwsgi writes its own log (logto); its standard output is kept apart
    pid = spawn([service_program('uwsgi'), '--ini', str(ini)],
                pathlib.Path(workdir) / 'logs' / f'{name}-uwsgi.out',
                service_env(), cwd=workdir)
    write_pid_file(workdir, name, pid)
    return pid


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
    sections = {
        'DEFAULT': {
            'debug': 'False',
            'log_file': f'{state["workdir"]}/logs/{log_name}.log',
        },
        'keystone_authtoken': authtoken,
        'glance': {'region_name': REGION, 'valid_interfaces': 'public'},
        'oslo_policy': {'policy_file': 'policy.yaml'},
    }
    if state.get('instances'):
        # Behind HAProxy, which sets the forwarded headers: links say
        # https and name HAProxy's address.
        sections['oslo_middleware'] = {
            'enable_proxy_headers_parsing': 'True'}
        # Glance is reached over HTTPS through HAProxy too.
        sections['glance']['cafile'] = state['ca_file']
    return sections


def write_compute_config(config_dir, sections, policy_yaml=None):
    """Write compute_api.conf and policy.yaml into ``config_dir``."""
    config_dir = pathlib.Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    write_ini(config_dir / 'compute_api.conf', sections)
    if policy_yaml is None:
        policy_yaml = '# No overrides: the policy defaults apply.\n{}\n'
    (config_dir / 'policy.yaml').write_text(policy_yaml)


def start_compute_api(state, name, conf_overrides=None, workers=1,
                      policy_yaml=None, server=None, server_settings=None):
    """Start an extra compute-api with its own config dir and port.

    The config is the stack's compute_api.conf with ``conf_overrides``
    (``{section: {option: value}}``) applied; ``policy_yaml`` is written to
    its policy.yaml. ``server``: one of ``SERVERS``, by default the
    stack's; ``server_settings``: settings of its configuration file to
    change. Returns ``{'url', 'pid', 'config_dir'}``; stop it with
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
    pid = start_compute_server(server or stack_server(state), name,
                               config_dir, port=port, workers=workers,
                               workdir=workdir, extra=server_settings)
    url = f'http://{HOST}:{port}'
    try:
        wait_http(name, url + '/', pid, workdir / 'logs' / f'{name}.log',
                  COMPUTE_START_TIMEOUT)
    except BaseException:
        stop_process(pid)
        raise
    return {'url': url, 'pid': pid, 'config_dir': str(config_dir)}


def stack_server(state):
    """The WSGI server the stack runs compute-api under."""
    return state.get('compute_server', DEFAULT_SERVER)


def start(stack):
    pid = start_compute_server(stack_server(stack.state), 'compute-api',
                               stack.state['compute_config_dir'],
                               port=stack.state['ports']['compute'],
                               workers=stack.compute_workers,
                               workdir=stack.workdir)
    stack._record('compute-api', pid)


# --------------------------------------------------------------------------
# The scaled stack's instances behind HAProxy


def instance_sections(state, name):
    """An instance's compute_api.conf: the stack's, with its own log and
    the healthcheck an operator drains it with (``disable_file``)."""
    instance = state['instances'][name]
    sections = compute_conf_sections(state, log_name=f'{name}-app')
    sections['healthcheck'] = {
        'backends': 'disable_by_file',
        'disable_by_file_path': instance['disable_file'],
    }
    return sections


def spawn_instance(state, name):
    """Start instance ``name`` of ``state['instances']`` (not waiting)."""
    instance = state['instances'][name]
    workdir = pathlib.Path(state['workdir'])
    config_dir = pathlib.Path(instance['config_dir'])
    write_compute_config(config_dir, instance_sections(state, name))
    pid = start_compute_server(stack_server(state), name, config_dir,
                               port=instance['port'],
                               workers=state['compute_workers'],
                               workdir=workdir)
    state['pids'][name] = pid
    return pid


def wait_instance(state, name):
    """Wait until instance ``name`` answers on its own port."""
    workdir = pathlib.Path(state['workdir'])
    wait_http(name, state['instances'][name]['url'] + '/',
              state['pids'][name], workdir / 'logs' / f'{name}.log',
              COMPUTE_START_TIMEOUT)


def restart_instance(state, name):
    """Start instance ``name`` again (after it was stopped or killed), on
    the same port and configuration; saves the new PID."""
    spawn_instance(state, name)
    save_state(state)
    wait_instance(state, name)

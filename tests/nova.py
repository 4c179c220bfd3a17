"""Nova's compute API on loopback, with or without compute-api's filter.

The functional tests of the extension (``tests/functional/
test_nova_extension.py``) run the real thing: nova 34.0.0 from PyPI,
installed by ``tools/bootstrap.sh`` into its own virtual environment
(``.venv-nova``, with compute-api built from this source beside it, as an
operator who adds the filter has it), served by gunicorn with Nova's own
WSGI application (``nova.wsgi.osapi_compute:application``), Nova's own
``api-paste.ini`` (the copy installed with the package) and, for an
instance with the filter, the one section and the two pipeline entries
that ``doc/source/nova-extension.rst`` tells operators to add.

Nova runs against a stack of ``tests/stack/`` (its Keystone, Glance and
memcached). It needs databases even for its API: sqlite files made once by
``nova-manage api_db sync`` and ``db sync`` (:func:`prepare_databases`)
and copied for every instance. ``transport_url = fake:/`` stands in for a
message broker, which the image calls never use. Like Keystone, Nova parses
the process's command line, so gunicorn gets no arguments (see
``tests/stack/processes.py``).

Nova finds Glance, and clients find Nova, in a region of the catalog of
their own (:func:`register_region`), so that nothing the other functional
tests use changes.
"""

import os
import pathlib
import shutil
import uuid

from tests import stack

NOVA_VENV = pathlib.Path(os.environ.get(
    'COMPUTE_API_NOVA_VENV', stack.REPO_ROOT / '.venv-nova'))
NOVA_BIN_DIR = NOVA_VENV / 'bin'
# Nova's WSGI application: a module from 30 on (the only one from 33 on),
# an application factory before.
NOVA_APP = 'nova.wsgi.osapi_compute:application'
NOVA_APP_FACTORY = 'nova.api.openstack.compute.wsgi:init_application()'
NOVA_CONFIG_ENV = 'OS_NOVA_CONFIG_DIR'
NOVA_START_TIMEOUT = 60
REGION = 'NovaRegion'

FILTER_NAME = 'compute_api_images'
# The section doc/source/nova-extension.rst has operators add.
FILTER_SECTION = """
[filter:compute_api_images]
paste.filter_factory = compute_api.extension:images_filter_factory
config_dir = {config_dir}
"""
# Where the filter goes in the two pipelines that serve /v2.1 and /v2.
PIPELINE_ANCHOR = ' keystonecontext '
HOST_PIPELINES = ('openstack_compute_api_v21',
                  'openstack_compute_api_v21_legacy_v2_compatible')


def nova_program(name):
    path = NOVA_BIN_DIR / name
    if not os.access(path, os.X_OK):
        raise stack.StackError(f'{path} is missing: run tools/bootstrap.sh, '
                               f'which installs Nova into {NOVA_VENV}')
    return path


def nova_app():
    """The WSGI application of the Nova in ``NOVA_VENV``, for gunicorn."""
    modules = NOVA_VENV.glob('lib/python3*/site-packages/nova/wsgi/'
                             'osapi_compute.py')
    return NOVA_APP if any(modules) else NOVA_APP_FACTORY


def installed_paste_ini():
    """Nova's api-paste.ini, as its package installs it."""
    path = NOVA_VENV / 'etc' / 'nova' / 'api-paste.ini'
    if not path.exists():
        raise stack.StackError(f'{path} is missing: run tools/bootstrap.sh')
    return path.read_text()


def paste_with_filter(text, config_dir):
    """Nova's api-paste.ini with the filter added as the docs say: right
    after keystonecontext in both pipelines, and its section."""
    lines = text.splitlines(keepends=True)
    section = None
    inserted = []
    for i, line in enumerate(lines):
        if line.startswith('['):
            section = line.strip()[1:-1].split(':', 1)[-1]
        elif (section in HOST_PIPELINES and line.startswith('keystone =')
              and PIPELINE_ANCHOR in line):
            lines[i] = line.replace(PIPELINE_ANCHOR,
                                    f'{PIPELINE_ANCHOR}{FILTER_NAME} ', 1)
            inserted.append(section)
    if sorted(inserted) != sorted(HOST_PIPELINES):
        raise stack.StackError('Nova\'s api-paste.ini has changed: the '
                               f'pipelines {", ".join(HOST_PIPELINES)} '
                               'have no keystonecontext entry to insert '
                               'the filter after')
    return ''.join(lines) + FILTER_SECTION.format(config_dir=config_dir)


def nova_conf_sections(state, base, log_name, region=REGION):
    """nova.conf for an API-only Nova of ``state``'s stack, finding Glance
    in ``region``."""
    authtoken = stack.authtoken_options(state, 'compute')
    authtoken['service_type'] = 'compute'
    return {
        'DEFAULT': {'debug': 'False',
                    'log_file': f'{state["workdir"]}/logs/{log_name}.log',
                    'transport_url': 'fake:/',
                    'host': log_name},
        'api': {'auth_strategy': 'keystone'},
        'api_database': {'connection': f'sqlite:///{base}/nova_api.db'},
        'database': {'connection': f'sqlite:///{base}/nova.db'},
        'keystone_authtoken': authtoken,
        'service_user': {'send_service_user_token': 'false'},
        'oslo_concurrency': {'lock_path': f'{base}/locks'},
        'glance': {'region_name': region, 'valid_interfaces': 'public'},
    }


def prepare_databases(state, name=None):
    """Make Nova's sqlite databases once; returns their directory (one per
    Nova environment: each release has its own schema)."""
    workdir = pathlib.Path(state['workdir'])
    base = workdir / (name or f'nova-db-{NOVA_VENV.name.lstrip(".")}')
    base.mkdir(exist_ok=True)
    conf = base / 'nova.conf'
    stack.write_ini(conf, nova_conf_sections(state, base, name))
    for command in ('api_db', 'db'):
        stack.run_command(
            [nova_program('nova-manage'), '--config-file', conf, command,
             'sync'],
            workdir / 'logs' / 'setup' / f'nova-manage-{command}.log',
            cwd=workdir)
    return base


def filter_conf_sections(region=REGION):
    """compute_api.conf for the filter: [glance] and [oslo_policy] only
    (the host's auth_token has validated the token)."""
    return {
        'DEFAULT': {'debug': 'False'},
        'glance': {'region_name': region, 'valid_interfaces': 'public'},
        'oslo_policy': {'policy_file': 'policy.yaml'},
    }


def start_nova(state, databases, name=None, with_filter=True,
               filter_overrides=None, policy_yaml=None, region=REGION):
    """Start Nova's API under gunicorn on a free port.

    ``databases`` is a directory from :func:`prepare_databases` (copied,
    so that instances do not share a file). With ``with_filter``, Nova's
    pipelines have compute-api's filter, configured by ``<dir>/compute_api/
    compute_api.conf`` (``filter_overrides``: ``{section: {option:
    value}}``) and its ``policy.yaml``. Nova and the filter find Glance in
    ``region`` (see :func:`register_region`). Returns ``{'url', 'pid',
    'config_dir', 'filter_config_dir'}``; stop it with
    ``stack.stop_process(pid)``.
    """
    name = name or f'nova-{uuid.uuid4().hex[:12]}'
    workdir = pathlib.Path(state['workdir'])
    base = workdir / name
    base.mkdir()
    for db in ('nova_api.db', 'nova.db'):
        shutil.copyfile(pathlib.Path(databases) / db, base / db)
    stack.write_ini(base / 'nova.conf',
                    nova_conf_sections(state, base, f'{name}-app', region))
    paste = installed_paste_ini()
    filter_dir = base / 'compute_api'
    if with_filter:
        paste = paste_with_filter(paste, filter_dir)
        sections = filter_conf_sections(region)
        for section, options in (filter_overrides or {}).items():
            sections.setdefault(section, {}).update(
                {key: str(value) for key, value in options.items()})
        stack.write_compute_config(filter_dir, sections, policy_yaml)
    (base / 'api-paste.ini').write_text(paste)
    port = stack.free_ports(1)[0]
    stack.write_gunicorn_conf(base / 'gunicorn.conf.py', app=nova_app(),
                              port=port, workers=1, log_name=name,
                              workdir=workdir)
    env = dict(os.environ)
    for var in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME',
                stack.COMPUTE_CONFIG_ENV):
        env.pop(var, None)
    env[NOVA_CONFIG_ENV] = str(base)
    env['GUNICORN_CMD_ARGS'] = f'--config {base / "gunicorn.conf.py"}'
    log = workdir / 'logs' / f'{name}.log'
    pid = stack.spawn([nova_program('gunicorn')], log, env)
    stack.write_pid_file(workdir, name, pid)
    url = f'http://{stack.HOST}:{port}'
    try:
        stack.wait_http(name, url + '/', pid, log, NOVA_START_TIMEOUT)
    except BaseException:
        stack.stop_process(pid)
        raise
    return {'url': url, 'pid': pid, 'config_dir': str(base),
            'filter_config_dir': str(filter_dir)}


def register_region(state, compute_url, region=REGION, *, identity_url=None,
                    image_url=None, interfaces=stack.INTERFACES):
    """Create ``region`` with identity, image and compute endpoints (by
    default the stack's Keystone and Glance, and ``compute_url``) for each
    of ``interfaces``. Returns a callable that removes them again."""
    admin = stack.get_session(state, 'admin')
    created = []

    def call(method, path, body=None):
        return stack._keystone(state, admin, method, path, body)
    if not any(r['id'] == region for r in call('GET', '/regions')['regions']):
        call('POST', '/regions', {'region': {'id': region}})
    urls = {'identity': identity_url or state['keystone_url'],
            'image': image_url or state['glance_url'], 'compute': compute_url}
    for service_type, url in urls.items():
        (service,) = call('GET', f'/services?type={service_type}')[
            'services']
        for interface in interfaces:
            endpoint = call('POST', '/endpoints', {'endpoint': {
                'service_id': service['id'], 'interface': interface,
                'url': url, 'region_id': region}})['endpoint']
            created.append(endpoint['id'])

    def unregister():
        for endpoint_id in created:
            call('DELETE', f'/endpoints/{endpoint_id}')
        call('DELETE', f'/regions/{region}')
    return unregister

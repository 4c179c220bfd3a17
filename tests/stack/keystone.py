"""Keystone under gunicorn: setup, start, identities and catalog.

sqlite, fernet tokens, one sync worker (sqlite answers concurrent token
issues with "database is locked"); in the scaled stack PostgreSQL and
two workers.
"""

import grp
import os
import pwd

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.stack import postgres
from tests.stack.common import BIN_DIR
from tests.stack.common import DEFAULT_DOMAIN
from tests.stack.common import EXTRA_ROLES
from tests.stack.common import INTERFACES
from tests.stack.common import KEYSTONE_APP
from tests.stack.common import PROJECTS
from tests.stack.common import REGION
from tests.stack.common import SCALED_WORKERS
from tests.stack.common import SERVICE_START_TIMEOUT
from tests.stack.common import SERVICES
from tests.stack.common import SQLITE_WORKERS
from tests.stack.common import USERS
from tests.stack.common import StackError
from tests.stack.config import write_ini
from tests.stack.processes import run_command
from tests.stack.processes import start_gunicorn
from tests.stack.processes import wait_http
from tests.stack.processes import write_gunicorn_conf


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


def _keystone(state, session, method, path, body=None):
    """A Keystone API call as admin; returns the decoded JSON body."""
    response = session.request(state['keystone_url'] + path, method,
                               json=body, raise_exc=True)
    return response.json() if response.content else {}


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


# --------------------------------------------------------------------------
# Setup (``stack`` is the ``Stack`` being started)


def database_url(stack, name):
    """Keystone's or Glance's database: sqlite, or PostgreSQL if scaled."""
    if stack.state.get('scaled'):
        return postgres.database_url(stack.state, name)
    return f'sqlite:///{stack.workdir / name}/{name}.db'


def service_workers(stack):
    """gunicorn workers of Keystone and Glance."""
    return SCALED_WORKERS if stack.state.get('scaled') else SQLITE_WORKERS


def write_config(stack):
    base = stack.workdir / 'keystone'
    write_ini(base / 'keystone.conf', {
        'DEFAULT': {'debug': 'False',
                    'log_file': stack.logs / 'keystone-app.log'},
        'database': {'connection': database_url(stack, 'keystone')},
        'token': {'provider': 'fernet'},
        'fernet_tokens': {'key_repository': base / 'fernet-keys'},
        # Defaults to /etc/keystone/fernet-keys/ otherwise, and
        # fernet_setup would create it there.
        'fernet_receipts': {'key_repository': base / 'receipt-keys'},
        'credential': {'key_repository': base / 'credential-keys'},
        'cache': {'enabled': 'True',
                  'backend': 'oslo_cache.memcache_pool',
                  'memcache_servers': stack.state['memcached']},
        'identity': {'password_hash_rounds': '4'},
    })
    write_gunicorn_conf(base / 'gunicorn.conf.py', app=KEYSTONE_APP,
                        port=stack.state['ports']['keystone'],
                        workers=service_workers(stack),
                        log_name='keystone', workdir=stack.workdir)


def _manage(stack, *args, env=None):
    conf = stack.workdir / 'keystone' / 'keystone.conf'
    log = stack.logs / 'setup' / f'keystone-manage-{args[0]}.log'
    run_command([BIN_DIR / 'keystone-manage', '--config-file', conf,
                 *args], log, env=env, cwd=stack.workdir)


def setup_keys(stack):
    owner = ['--keystone-user', pwd.getpwuid(os.getuid()).pw_name,
             '--keystone-group', grp.getgrgid(os.getgid()).gr_name]
    _manage(stack, 'fernet_setup', *owner)
    _manage(stack, 'credential_setup', *owner)


def setup_db(stack):
    _manage(stack, 'db_sync')
    url = stack.state['keystone_url']
    env = dict(os.environ,
               OS_BOOTSTRAP_PASSWORD=stack.state['users']['admin'][
                   'password'])
    _manage(stack, 'bootstrap', '--bootstrap-username', 'admin',
            '--bootstrap-project-name', 'admin',
            '--bootstrap-role-name', 'admin',
            '--bootstrap-region-id', REGION,
            '--bootstrap-admin-url', url, '--bootstrap-internal-url', url,
            '--bootstrap-public-url', url, env=env)


def start(stack):
    base = stack.workdir / 'keystone'
    pid = start_gunicorn('keystone', base / 'gunicorn.conf.py',
                         stack.workdir,
                         {'OS_KEYSTONE_CONFIG_DIR': str(base)})
    stack._record('keystone', pid)
    wait_http('keystone', stack.state['keystone_url'], pid,
              stack.logs / 'keystone.log', SERVICE_START_TIMEOUT)


def create_identities(stack):
    """Projects, roles, users and the catalog, over Keystone's API."""
    admin = get_session(stack.state, 'admin')
    users = stack.state['users']
    users['admin']['user_id'] = admin.get_user_id()
    users['admin']['project_id'] = admin.get_project_id()
    projects = {'admin': users['admin']['project_id']}
    for name in PROJECTS:
        projects[name] = _post(stack, admin, 'projects', {
            'name': name, 'domain_id': 'default'})
    roles = {role['name']: role['id'] for role in
             _keystone(stack.state, admin, 'GET', '/roles')['roles']}
    for name in EXTRA_ROLES:
        roles[name] = _post(stack, admin, 'roles', {'name': name})
    stack.state['projects'] = projects
    for name in USERS:
        _create_user(stack, admin, name, projects, roles)
    # admin also holds its role on the default domain, so that it can
    # get a domain-scoped token, as a cloud's operators do.
    _keystone(stack.state, admin, 'PUT',
              f'/domains/default/users/{users["admin"]["user_id"]}'
              f'/roles/{roles["admin"]}')
    _register_services(stack, admin)


def _post(stack, session, collection, body):
    """POST a Keystone resource; returns its id."""
    key = collection[:-1]
    reply = _keystone(stack.state, session, 'POST', f'/{collection}',
                      {key: body})
    return reply[key]['id']


def _create_user(stack, admin, name, projects, roles):
    user = stack.state['users'][name]
    project_id = projects[user['project_name']]
    user['project_id'] = project_id
    user['user_id'] = _post(stack, admin, 'users', {
        'name': name, 'password': user['password'],
        'domain_id': 'default', 'default_project_id': project_id})
    for role in user['roles']:
        _keystone(stack.state, admin, 'PUT',
                  f'/projects/{project_id}/users/{user["user_id"]}'
                  f'/roles/{roles[role]}')


def _register_services(stack, admin):
    for service_type, name, url_key in SERVICES:
        if service_type == 'compute' and not stack.register_compute:
            continue
        service_id = _post(stack, admin, 'services', {
            'type': service_type, 'name': name})
        for interface in INTERFACES:
            _post(stack, admin, 'endpoints', {
                'service_id': service_id, 'interface': interface,
                'region_id': REGION, 'url': stack.state[url_key]})

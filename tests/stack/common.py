"""Names, places and fixed data every part of the stack shares."""

import os
import pathlib
import sys

HOST = '127.0.0.1'
REGION = 'RegionOne'
DEFAULT_DOMAIN = 'Default'
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
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

# Keystone's and Glance's gunicorn workers: one on sqlite (which answers
# concurrent writes with "database is locked"), more on PostgreSQL.
SQLITE_WORKERS = 1
SCALED_WORKERS = 2

# Directories and files under the workdir that belong to one stack; a fresh
# ``up`` replaces them.  Extra compute-api instances may not use these names.
STACK_PATHS = ('keystone', 'glance', 'compute', 'postgres', 'tls', 'haproxy',
               'compute-instances', 'logs', 'pids', STATE_FILE)

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
    ('image', 'glance', 'glance_endpoint'),
    ('compute', 'compute-api', 'compute_endpoint'),
)
INTERFACES = ('public', 'internal', 'admin')

SAMPLE_IMAGE_NAME = 'cirros-sample'
SAMPLE_IMAGE_OWNER = 'demo-member'
SAMPLE_IMAGE_DATA = (b'compute-api sample image, not a real disk\n' * 100)

PROCESS_MARKERS = ('gunicorn', 'memcached', 'uwsgi', 'postgres', 'haproxy')
# compute-api instances behind HAProxy in the scaled stack, by default.
SCALED_INSTANCES = 2


class StackError(Exception):
    """The stack could not be started, reached or stopped."""

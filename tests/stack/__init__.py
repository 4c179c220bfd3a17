"""A throw-away OpenStack stack on loopback for compute-api.

``python -m tests.stack up|down|status [--workdir DIR]`` (or ``tools/stack``)
starts, on free ports of 127.0.0.1 only:

* memcached (Keystone's cache and the ``auth_token`` token caches):
  ``memcached``,
* Keystone under gunicorn (sqlite, fernet tokens, one sync worker: sqlite
  answers concurrent token issues with "database is locked"): ``keystone``,
* Glance under gunicorn (sqlite, file store, one sync worker: Glance on
  sqlite answers concurrent writes with "database is locked"): ``glance``,
* compute-api (``compute_api.wsgi.api:application``) under uWSGI, or
  gunicorn (``--server``), with the shipped example configuration, run as
  the install guide has operators run it, from its own virtual environment
  (``.venv-service``, made by ``tools/bootstrap.sh``): ``compute``.

It then creates the projects, users, roles, services and endpoints that the
functional tests rely on, uploads a sample image owned by project ``demo``
and writes everything a client needs (URLs, ports, passwords, ids, PIDs) to
``<workdir>/stack.json`` (``state``).  Every service runs detached in its own
session and process group, logs under ``<workdir>/logs/`` and has a PID file
under ``<workdir>/pids/`` (``processes``); ``down`` stops them all.
``core`` holds the ``Stack`` that puts the services together, ``cli``
the command line and ``progress`` the lines it prints while a stack
starts.

``up --scaled`` (``Stack(scaled=True)``) makes it look like production:
Keystone and Glance keep their data in a private PostgreSQL cluster
(``postgres``) and run two workers each; two (``--instances``) compute-api
instances share memcached behind HAProxy (``haproxy``), which terminates
TLS with a certificate of the stack's own CA (``tls``) and is also the
catalog's way to Glance, over HTTPS.

The package is also the library the functional tests use; every name they
need is importable from here: ``Stack``, ``load_state``,
``start_compute_api``, ``stop_process``, ``get_session``, ``glance_image``,
``create_image``, ``set_image``, ...
"""

from tests.stack.cli import _cmd_down
from tests.stack.cli import _cmd_status
from tests.stack.cli import _cmd_up
from tests.stack.cli import _stop_command
from tests.stack.cli import cloud_instructions
from tests.stack.cli import instructions
from tests.stack.cli import main
from tests.stack.common import BIN_DIR
from tests.stack.common import COMPUTE_APP
from tests.stack.common import COMPUTE_CONFIG_ENV
from tests.stack.common import COMPUTE_START_TIMEOUT
from tests.stack.common import DEFAULT_DOMAIN
from tests.stack.common import DEFAULT_WORKDIR
from tests.stack.common import EXAMPLES_DIR
from tests.stack.common import EXTRA_ROLES
from tests.stack.common import GLANCE_APP
from tests.stack.common import HOST
from tests.stack.common import INTERFACES
from tests.stack.common import KEYSTONE_APP
from tests.stack.common import PROCESS_MARKERS
from tests.stack.common import PROJECTS
from tests.stack.common import REGION
from tests.stack.common import REPO_ROOT
from tests.stack.common import SAMPLE_IMAGE_DATA
from tests.stack.common import SAMPLE_IMAGE_NAME
from tests.stack.common import SAMPLE_IMAGE_OWNER
from tests.stack.common import SERVICE_BIN_DIR
from tests.stack.common import SERVICE_START_TIMEOUT
from tests.stack.common import SERVICE_VENV
from tests.stack.common import SERVICES
from tests.stack.common import STACK_PATHS
from tests.stack.common import STATE_FILE
from tests.stack.common import STOP_TIMEOUT
from tests.stack.common import USERS
from tests.stack.common import StackError
from tests.stack.compute import DEFAULT_SERVER
from tests.stack.compute import SERVERS
from tests.stack.compute import compute_conf_sections
from tests.stack.compute import start_compute_api
from tests.stack.compute import start_compute_server
from tests.stack.compute import write_compute_config
from tests.stack.compute import write_compute_gunicorn_conf
from tests.stack.compute import write_compute_uwsgi_ini
from tests.stack.config import read_ini
from tests.stack.config import write_ini
from tests.stack.core import Stack
from tests.stack.glance import _check
from tests.stack.glance import _glance
from tests.stack.glance import _wait_image_status
from tests.stack.glance import create_image
from tests.stack.glance import glance_image
from tests.stack.glance import glance_paste_ini
from tests.stack.glance import restart_glance
from tests.stack.glance import set_image
from tests.stack.keystone import _keystone
from tests.stack.keystone import authtoken_options
from tests.stack.keystone import get_session
from tests.stack.processes import _first_exception
from tests.stack.processes import _group_alive
from tests.stack.processes import _proc_stat
from tests.stack.processes import _signal_and_wait
from tests.stack.processes import answer_status
from tests.stack.processes import children
from tests.stack.processes import failure_reason
from tests.stack.processes import free_ports
from tests.stack.processes import is_stack_process
from tests.stack.processes import log_tail
from tests.stack.processes import pid_alive
from tests.stack.processes import read_pid_files
from tests.stack.processes import run_command
from tests.stack.processes import service_program
from tests.stack.processes import spawn
from tests.stack.processes import start_gunicorn
from tests.stack.processes import stop_process
from tests.stack.processes import wait_http
from tests.stack.processes import wait_tcp
from tests.stack.processes import write_gunicorn_conf
from tests.stack.processes import write_pid_file
from tests.stack.state import load_state
from tests.stack.state import new_state
from tests.stack.state import process_status
from tests.stack.state import running_stacks
from tests.stack.state import save_state

__all__ = [
    'HOST',
    'REGION',
    'DEFAULT_DOMAIN',
    'REPO_ROOT',
    'DEFAULT_WORKDIR',
    'STATE_FILE',
    'BIN_DIR',
    'SERVICE_VENV',
    'SERVICE_BIN_DIR',
    'EXAMPLES_DIR',
    'KEYSTONE_APP',
    'GLANCE_APP',
    'COMPUTE_APP',
    'COMPUTE_CONFIG_ENV',
    'SERVICE_START_TIMEOUT',
    'COMPUTE_START_TIMEOUT',
    'STOP_TIMEOUT',
    'STACK_PATHS',
    'EXTRA_ROLES',
    'PROJECTS',
    'USERS',
    'SERVICES',
    'INTERFACES',
    'SAMPLE_IMAGE_NAME',
    'SAMPLE_IMAGE_OWNER',
    'SAMPLE_IMAGE_DATA',
    'PROCESS_MARKERS',
    'StackError',
    'free_ports',
    'spawn',
    '_proc_stat',
    'children',
    'pid_alive',
    'is_stack_process',
    '_group_alive',
    '_signal_and_wait',
    'stop_process',
    'log_tail',
    'failure_reason',
    '_first_exception',
    'answer_status',
    'wait_http',
    'wait_tcp',
    'run_command',
    'write_ini',
    'read_ini',
    'write_gunicorn_conf',
    'write_compute_gunicorn_conf',
    'write_compute_uwsgi_ini',
    'start_compute_server',
    'SERVERS',
    'DEFAULT_SERVER',
    'service_program',
    'start_gunicorn',
    'write_pid_file',
    'read_pid_files',
    'glance_paste_ini',
    'authtoken_options',
    'compute_conf_sections',
    'write_compute_config',
    'load_state',
    'save_state',
    'process_status',
    'running_stacks',
    'new_state',
    'get_session',
    '_glance',
    '_check',
    'glance_image',
    'create_image',
    '_wait_image_status',
    'set_image',
    '_keystone',
    'start_compute_api',
    'restart_glance',
    'Stack',
    '_stop_command',
    'cloud_instructions',
    'instructions',
    '_cmd_up',
    '_cmd_down',
    '_cmd_status',
    'main',
]

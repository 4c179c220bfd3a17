"""A stack's state: ports, URLs, users, ids and PIDs, in ``stack.json``."""

import json
import os
import pathlib
import secrets

from tests.stack.common import HOST
from tests.stack.common import REGION
from tests.stack.common import SCALED_INSTANCES
from tests.stack.common import STATE_FILE
from tests.stack.common import USERS
from tests.stack.common import StackError
from tests.stack.processes import free_ports
from tests.stack.processes import is_stack_process
from tests.stack.processes import read_pid_files


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


def running_stacks():
    """Workdirs of the stacks running on this host, sorted.

    A stack's servers run in its workdir (Keystone's and Glance's gunicorn
    change to it, compute-api is started there), which holds its
    stack.json; this finds them by the working directories of the running
    stack processes.
    """
    found = set()
    for entry in pathlib.Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = pathlib.Path(os.readlink(entry / 'cwd'))
        except OSError:
            continue
        if cwd in found or not (cwd / STATE_FILE).is_file():
            continue
        if is_stack_process(int(entry.name)):
            found.add(cwd)
    return sorted(str(path) for path in found)


def new_state(workdir, scaled=False, instances=SCALED_INSTANCES,
              compute_workers=2):
    """Plan a stack: ports, URLs and random passwords; nothing started.

    ``scaled``: Keystone and Glance on PostgreSQL (``postgres.py``), and
    ``instances`` compute-api instances behind HAProxy over TLS.
    """
    names = ('memcached', 'keystone', 'glance', 'compute')
    instance_names = ()
    if scaled:
        instance_names = tuple(f'compute-api-{n}'
                               for n in range(1, instances + 1))
        names += ('postgres', 'haproxy', 'glance_tls', 'glance_wrong_name',
                  *instance_names)
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    compute_url = f'http://{HOST}:{ports["compute"]}'
    if scaled:
        compute_url = f'https://{HOST}:{ports["haproxy"]}'
    users = {name: {'password': secrets.token_urlsafe(18),
                    'project_name': project, 'roles': list(roles)}
             for name, (project, roles) in USERS.items()}
    users['admin'] = {'password': secrets.token_urlsafe(18),
                      'project_name': 'admin', 'roles': ['admin']}
    workdir = pathlib.Path(workdir)
    state = {
        'workdir': str(workdir),
        'region': REGION,
        'ports': ports,
        'memcached': f'{HOST}:{ports["memcached"]}',
        'keystone_url': f'http://{HOST}:{ports["keystone"]}/v3',
        'glance_url': f'http://{HOST}:{ports["glance"]}',
        # The catalog's: Glance itself, or HAProxy's HTTPS in front of it.
        'glance_endpoint': f'http://{HOST}:{ports["glance"]}',
        'compute_url': compute_url,
        'compute_endpoint': f'{compute_url}/v2.1',
        'compute_config_dir': str(workdir / 'compute'),
        'memcache_secret_key': secrets.token_hex(32),
        'users': users,
        'projects': {},
        'pids': {},
        'sample_image_id': None,
        'scaled': scaled,
    }
    if scaled:
        state['glance_endpoint'] = f'https://{HOST}:{ports["glance_tls"]}'
        # Glance again, with a certificate for another host name.
        state['glance_wrong_name_url'] = (
            f'https://{HOST}:{ports["glance_wrong_name"]}')
        state['compute_workers'] = compute_workers
        state['instances'] = {
            name: {'port': ports[name], 'url': f'http://{HOST}:{ports[name]}',
                   'config_dir': str(workdir / 'compute-instances' / name),
                   'disable_file': str(workdir / 'compute-instances' / name
                                       / 'healthcheck-disable')}
            for name in instance_names}
        state['postgres'] = {
            'url': f'{HOST}:{ports["postgres"]}',
            'passwords': {name: secrets.token_urlsafe(18)
                          for name in ('postgres', 'keystone', 'glance')},
        }
    return state

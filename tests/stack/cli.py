"""``python -m tests.stack up|down|status`` (or ``tools/stack``)."""

import argparse
import json
import os
import pathlib
import sys
import time
import traceback

from tests.stack import compute
from tests.stack import glance
from tests.stack import progress
from tests.stack.common import DEFAULT_DOMAIN
from tests.stack.common import DEFAULT_WORKDIR
from tests.stack.common import SAMPLE_IMAGE_DATA
from tests.stack.common import SAMPLE_IMAGE_NAME
from tests.stack.common import SAMPLE_IMAGE_OWNER
from tests.stack.common import SCALED_INSTANCES
from tests.stack.common import STATE_FILE
from tests.stack.common import StackError
from tests.stack.core import Stack
from tests.stack.keystone import get_session
from tests.stack.state import process_status
from tests.stack.state import running_stacks
from tests.stack.state import save_state

# The name the usage is printed with: tools/stack sets it.
PROG_ENV = 'COMPUTE_API_STACK_PROG'
# What openstacksdk raises for a 404 (the class's own name, as its
# tracebacks print it; ResourceNotFound is another name of the same class).
SDK_NOT_FOUND = 'openstack.exceptions.NotFoundException'


def _stop_command(state, default_workdir=DEFAULT_WORKDIR):
    down = 'tools/stack down'
    if pathlib.Path(state['workdir']) != pathlib.Path(default_workdir):
        down += f' --workdir {state["workdir"]}'
    return down


def _glance_line(state):
    """The catalog's Glance URL (HAProxy's HTTPS in the scaled stack), and
    Glance's own address where that differs."""
    endpoint = state.get('glance_endpoint', state['glance_url'])
    if endpoint == state['glance_url']:
        return endpoint
    return f'{endpoint} (Glance itself: {state["glance_url"]})'


def cloud_instructions(state):
    """What a stack without compute-api offers (``up --no-compute``)."""
    admin = state['users']['admin']
    return f"""\
Endpoints (region {state['region']}; no compute service is registered):
  keystone     {state['keystone_url']}
  glance       {_glance_line(state)}
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
    cacert = sdk_cacert = ''
    if state.get('ca_file'):
        cacert = f' --cacert {state["ca_file"]}'
        sdk_cacert = f",\n      cacert='{state['ca_file']}'"
    workdir_arg = ''
    if pathlib.Path(state['workdir']) != pathlib.Path(default_workdir):
        workdir_arg = f' --workdir {state["workdir"]}'
    return f"""\
Endpoints (region {state['region']}):
  keystone     {state['keystone_url']}
  glance       {_glance_line(state)}
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
  curl -i -X DELETE{cacert} {state['compute_endpoint']}/images/{image_id} \\
    -H "X-Auth-Token: $TOKEN"

or with openstacksdk (.venv/bin/python; once one of the two has deleted
the image, the other answers 404, with openstacksdk
{SDK_NOT_FOUND}):
  import openstack
  conn = openstack.connect(
      auth_url='{state['keystone_url']}', username='{SAMPLE_IMAGE_OWNER}',
      password='{user['password']}', project_name='{user['project_name']}',
      user_domain_name='Default', project_domain_name='Default',
      region_name='{state['region']}'{sdk_cacert})
  conn.compute.delete_image('{image_id}', ignore_missing=False)

Verify it with tempest and compute-api's plugin (doc/source/verify.rst):
  .venv/bin/python -m tests.tempest_run{workdir_arg}
That writes a tempest workspace in {state['workdir']}/tempest and runs, in it,
  tempest run --regex '^compute_api_tempest_plugin\\.'
(tempest is .venv/bin/tempest; with --nova the same tests run against
Nova's API with compute-api's filter.)

Stop the stack: {down}"""


def fresh_sample_image(state):
    """Upload a new sample image if the stack's was deleted (by the
    printed curl or openstacksdk lines); True if it did. The new id is
    saved in stack.json."""
    session = get_session(state, SAMPLE_IMAGE_OWNER)
    image_id = state.get('sample_image_id')
    if image_id and glance.glance_image(state, session, image_id):
        return False
    state['sample_image_id'] = glance.create_image(
        state, session, name=SAMPLE_IMAGE_NAME, visibility='private',
        data=SAMPLE_IMAGE_DATA)
    save_state(state)
    return True


def _cmd_up(stack, args):
    running = stack.running()
    if running and set(running) >= set(stack.state.get('pids', {})):
        print(f'A stack is already running in {stack.workdir}.')
        with_compute = ('compute-api' in stack.state.get('pids', {})
                        or stack.state.get('instances'))
        if with_compute:
            old = stack.state.get('sample_image_id')
            if fresh_sample_image(stack.state):
                print(f'Its sample image ({old}) was deleted: uploaded '
                      f'a new one, {stack.state["sample_image_id"]}.')
        print()
        print(instructions(stack.state) if with_compute
              else cloud_instructions(stack.state))
        return 0
    if running:
        print(f'A stack in {stack.workdir} is partly running '
              f'({", ".join(running)}): run "down" first.', file=sys.stderr)
        return 1
    started = time.monotonic()
    what = ('Keystone and Glance' if args.no_compute
            else 'Keystone, Glance and compute-api')
    with progress.Progress() as stack.progress:
        stack.progress.say(f'starting {what} in {stack.workdir} '
                           '(about half a minute)')
        state = stack.up(register_compute=not args.no_compute)
    print(f'Stack up in {time.monotonic() - started:.1f}s'
          f'{" (without compute-api)" if args.no_compute else ""}.')
    if state.get('scaled'):
        print(f'Scaled: Keystone and Glance on PostgreSQL at '
              f'{state["postgres"]["url"]} (logs/postgres.log).')
    for name, instance in sorted(state.get('instances', {}).items()):
        print(f'  {name} {instance["url"]} behind HAProxy (CA bundle '
              f'{state["ca_file"]})')
    print()
    print(cloud_instructions(state) if args.no_compute
          else instructions(state))
    return 0


def _prog():
    return os.environ.get(PROG_ENV) or 'python -m tests.stack'


def _elsewhere(stack, command):
    """Where to look when there is no stack in ``stack.workdir``: the
    stacks running in other workdirs, with the command for each."""
    others = [workdir for workdir in running_stacks()
              if pathlib.Path(workdir) != stack.workdir]
    if others:
        return ('; running elsewhere: ' + ', '.join(
            f'{_prog()} {command}' + (
                '' if pathlib.Path(workdir) == DEFAULT_WORKDIR
                else f' --workdir {workdir}') for workdir in others))
    return (f'; for a stack started with --workdir DIR: {_prog()} {command} '
            '--workdir DIR')


def _cmd_down(stack, args):
    stopped = stack.down()
    for name, pid in sorted(stopped.items()):
        print(f'stopped {name} (pid {pid})')
    if not stopped:
        print(f'nothing running in {stack.workdir}'
              f'{_elsewhere(stack, "down")}')
    return 0


def _cmd_status(stack, args):
    if not stack.state:
        print(f'no stack in {stack.workdir}{_elsewhere(stack, "status")}')
        return 1
    status = process_status(stack.state)
    for name, pid in status.items():
        state = f'running (pid {pid})' if pid else 'not running'
        print(f'{name:<12} {state}')
    if not any(status.values()):
        print(f'nothing running in {stack.workdir}'
              f'{_elsewhere(stack, "status")}')
    return 0 if all(status.values()) else 1


def _unexpected(stack, exc):
    """One line for an error that is not a StackError; the traceback goes
    to a log file of the workdir."""
    log = stack.workdir / 'logs' / 'stack-error.log'
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, 'a') as f:
            f.write(f'{time.strftime("%Y-%m-%d %H:%M:%S")} '
                    f'{" ".join(sys.argv)}\n')
            traceback.print_exception(exc, file=f)
        where = f' (traceback in {log})'
    except OSError:
        where = ''
    first = str(exc).strip().splitlines()
    return f'{type(exc).__module__}.{type(exc).__name__}: ' \
        f'{first[0] if first else ""}{where}'


def build_parser():
    """The command line's parser (also used to check the documented
    commands)."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
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
                        help='up: compute-api worker processes')
    parser.add_argument('--server', choices=compute.SERVERS,
                        default=compute.DEFAULT_SERVER,
                        help='up: the WSGI server compute-api runs under, '
                             'with its shipped example configuration '
                             '(default: %(default)s)')
    parser.add_argument('--scaled', action='store_true',
                        help='up: Keystone and Glance on a private '
                             'PostgreSQL cluster, with several workers each, '
                             'and several compute-api instances behind '
                             'HAProxy over TLS')
    parser.add_argument('--instances', type=int, default=SCALED_INSTANCES,
                        help='up --scaled: compute-api instances '
                             '(default: %(default)s)')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    stack = Stack(args.workdir, compute_workers=args.compute_workers,
                  scaled=args.scaled, instances=args.instances,
                  server=args.server)
    command = {'up': _cmd_up, 'down': _cmd_down, 'status': _cmd_status}
    try:
        return command[args.command](stack, args)
    except StackError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted: stopped what had started', file=sys.stderr)
        return 130
    except Exception as exc:
        print(f'error: {_unexpected(stack, exc)}', file=sys.stderr)
        return 1

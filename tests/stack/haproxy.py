"""HAProxy in front of the scaled stack's compute-api instances.

Its configuration is the shipped ``etc/compute_api/haproxy.cfg.example``
with only the stack's own places changed: the address and certificate of
the frontend, the public name, the instances, and no ``user``/``group``
(HAProxy runs as the stack's user, in the foreground, logging to
``logs/haproxy.log``: one line per request, naming the instance that
served it).
"""

import csv
import io
import os
import shutil
import socket
import time

from tests.stack.common import EXAMPLES_DIR
from tests.stack.common import HOST
from tests.stack.common import StackError
from tests.stack.processes import run_command
from tests.stack.processes import spawn
from tests.stack.processes import wait_tcp

EXAMPLE = EXAMPLES_DIR / 'haproxy.cfg.example'
BACKEND = 'compute_api_instances'


def render(example, *, bind, cert, public_host, servers, admin_socket=None):
    """The example's text with the stack's places.

    ``servers`` is ``[(name, 'host:port')]``; ``admin_socket``, a path,
    adds HAProxy's admin socket (for the stack's tooling). Fails if the
    example lacks a line it is expected to have, so that the two cannot
    drift apart.
    """
    out = []
    seen = set()
    for line in example.splitlines():
        words = line.split()
        key = words[0] if words else ''
        if key in ('user', 'group'):
            seen.add(key)
            continue
        if key == 'server':
            seen.add(key)
            continue
        if key == 'bind':
            seen.add(key)
            line = f'    bind {bind} ssl crt {cert}'
        elif words[:3] == ['http-request', 'set-header', 'X-Forwarded-Host']:
            seen.add('forwarded-host')
            line = ('    http-request set-header X-Forwarded-Host '
                    f'{public_host}')
        out.append(line)
        if key == 'global' and admin_socket:
            out.append(f'    stats socket {admin_socket} mode 600 level admin')
        if key == 'default-server':
            seen.add(key)
            out += [f'    server {name} {address} check'
                    for name, address in servers]
    missing = {'bind', 'server', 'default-server',
               'forwarded-host'} - seen
    if missing:
        raise StackError(f'{EXAMPLE} has no {", ".join(sorted(missing))} '
                         'line')
    return '\n'.join(out) + '\n'


def write_config(stack):
    """``<workdir>/haproxy/haproxy.cfg`` for the planned instances."""
    state = stack.state
    base = stack.workdir / 'haproxy'
    base.mkdir(exist_ok=True)
    port = state['ports']['haproxy']
    servers = [(name, f'{HOST}:{instance["port"]}')
               for name, instance in sorted(state['instances'].items())]
    text = render(EXAMPLE.read_text(), bind=f'{HOST}:{port}',
                  cert=state['tls_cert'], public_host=f'{HOST}:{port}',
                  servers=servers, admin_socket=base / 'admin.sock')
    text += glance_sections(state)
    path = base / 'haproxy.cfg'
    path.write_text(text)
    return path


def glance_sections(state):
    """Glance over HTTPS: with the stack's certificate (the catalog's
    image endpoint), and with one for another host name."""
    ports = state['ports']
    wrong_name = state['tls_cert_wrong_name']
    return f"""
frontend glance_https
    bind {HOST}:{ports['glance_tls']} ssl crt {state['tls_cert']}
    default_backend glance

frontend glance_https_wrong_name
    bind {HOST}:{ports['glance_wrong_name']} ssl crt {wrong_name}
    default_backend glance

backend glance
    server glance {HOST}:{ports['glance']}
"""


def program():
    found = shutil.which('haproxy') or (
        '/usr/sbin/haproxy' if os.access('/usr/sbin/haproxy', os.X_OK)
        else None)
    if not found:
        raise StackError('HAProxy is not installed: run tools/bootstrap.sh')
    return found


def start(stack):
    """Check the configuration, start HAProxy and wait for its port."""
    path = write_config(stack)
    haproxy = program()
    run_command([haproxy, '-c', '-f', path],
                stack.logs / 'setup' / 'haproxy-check.log')
    pid = spawn([haproxy, '-db', '-f', path], stack.logs / 'haproxy.log',
                dict(os.environ))
    stack._record('haproxy', pid)
    wait_tcp('haproxy', stack.state['ports']['haproxy'])


def command(state, line):
    """Send one command to HAProxy's admin socket; returns the answer."""
    path = f'{state["workdir"]}/haproxy/admin.sock'
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(line.encode() + b'\n')
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b''.join(chunks).decode()


def server_status(state):
    """``{instance name: status}`` as HAProxy sees it (UP, DOWN, ...)."""
    text = command(state, 'show stat').lstrip('# ')
    return {row['svname']: row['status'].split()[0]
            for row in csv.DictReader(io.StringIO(text))
            if row['pxname'] == BACKEND
            and row['svname'] not in ('FRONTEND', 'BACKEND')}


def wait_status(state, status, names=None, timeout=30):
    """Wait until HAProxy sees each of ``names`` (default: all) as
    ``status``; returns the last ``server_status``."""
    names = set(names or state['instances'])
    deadline = time.monotonic() + timeout
    while True:
        current = server_status(state)
        if all(current.get(name) == status for name in names):
            return current
        if time.monotonic() > deadline:
            raise StackError(f'HAProxy does not see {sorted(names)} as '
                             f'{status} within {timeout}s: {current}')
        time.sleep(0.1)

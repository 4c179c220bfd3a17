"""Glance under gunicorn: setup, start, restart and image helpers.

sqlite, file store, one sync worker (Glance on sqlite answers concurrent
writes with "database is locked"); in the scaled stack PostgreSQL and two
workers.
"""

import importlib.metadata
import json
import pathlib
import shutil
import time

from tests.stack.common import BIN_DIR
from tests.stack.common import GLANCE_APP
from tests.stack.common import SAMPLE_IMAGE_DATA
from tests.stack.common import SAMPLE_IMAGE_NAME
from tests.stack.common import SAMPLE_IMAGE_OWNER
from tests.stack.common import SERVICE_START_TIMEOUT
from tests.stack.common import StackError
from tests.stack.config import write_ini
from tests.stack.keystone import authtoken_options
from tests.stack.keystone import database_url
from tests.stack.keystone import get_session
from tests.stack.keystone import service_workers
from tests.stack.processes import run_command
from tests.stack.processes import start_gunicorn
from tests.stack.processes import stop_process
from tests.stack.processes import wait_http
from tests.stack.processes import write_gunicorn_conf
from tests.stack.state import save_state


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


def glance_paste_ini():
    """Path of the glance-api-paste.ini installed with the glance package."""
    for file in importlib.metadata.distribution('glance').files or ():
        if file.name == 'glance-api-paste.ini':
            return pathlib.Path(file.locate())
    raise StackError('glance-api-paste.ini is not installed with glance')


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
# Setup (``stack`` is the ``Stack`` being started)


def write_config(stack):
    base = stack.workdir / 'glance'
    shutil.copyfile(glance_paste_ini(), base / 'glance-api-paste.ini')
    write_ini(base / 'glance-api.conf', {
        'DEFAULT': {'debug': 'False',
                    'log_file': stack.logs / 'glance-app.log',
                    'enabled_backends': 'local:file'},
        'database': {'connection': database_url(stack, 'glance')},
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
            authtoken_options(stack.state, 'glance'),
            service_type='image'),
    })
    # One worker on sqlite: Glance on sqlite fails concurrent writes.
    write_gunicorn_conf(base / 'gunicorn.conf.py', app=GLANCE_APP,
                        port=stack.state['ports']['glance'],
                        workers=service_workers(stack),
                        log_name='glance', workdir=stack.workdir)


def setup(stack):
    base = stack.workdir / 'glance'
    run_command([BIN_DIR / 'glance-manage', '--config-file',
                 base / 'glance-api.conf', 'db_sync'],
                stack.logs / 'setup' / 'glance-manage-db_sync.log',
                cwd=stack.workdir)
    pid = start_gunicorn('glance', base / 'gunicorn.conf.py',
                         stack.workdir,
                         {'OS_GLANCE_CONFIG_DIR': str(base)})
    stack._record('glance', pid)
    wait_http('glance', stack.state['glance_url'] + '/healthcheck', pid,
              stack.logs / 'glance.log', SERVICE_START_TIMEOUT)


def upload_sample_image(stack):
    session = get_session(stack.state, SAMPLE_IMAGE_OWNER)
    stack.state['sample_image_id'] = create_image(
        stack.state, session, name=SAMPLE_IMAGE_NAME,
        visibility='private', data=SAMPLE_IMAGE_DATA)

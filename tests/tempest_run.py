"""compute-api's tempest plugin against a stack of ``tests/stack/``.

``python -m tests.tempest_run --workdir DIR`` makes a tempest workspace
(``tempest init``) in ``DIR/tempest``, writes its ``etc/tempest.conf`` for
the stack described by ``DIR/stack.json`` (:func:`tempest_conf_sections`),
and runs ``tempest run --regex '^compute_api_tempest_plugin\\.'`` in it, as
an operator does in a workspace pointed at a cloud (doc/source/verify.rst).
It counts the projects, users and images in Keystone and Glance before and
after the run and fails if tempest left any behind.

``--nova`` runs the same tests against Nova's own API with compute-api's
filter (``tests/nova.py``), registered as ``compute`` in a region of its
own, with ``[compute_api] mode = extension``.

The exit status is 0 only if every test passed and nothing was left
behind. The last line printed is ``tempest <mode> cleanup: N passed, N
failed`` (one check: nothing left behind).
"""

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

from tests import stack

PLUGIN_REGEX = r'^compute_api_tempest_plugin\.'
TEMPEST = pathlib.Path(sys.executable).parent / 'tempest'
# compute-api's (and Nova 34's) highest microversion, and the body limit of
# [oslo_middleware] max_request_body_size (the default, in both).
MAX_REQUEST_BODY_SIZE = 114688


def tempest_conf_sections(state, workspace, region=None, mode='standalone'):
    """tempest.conf for the stack of ``state``: Keystone v3, dynamic
    credentials made by the stack's admin, Glance, and the ``compute``
    endpoint of ``region`` (default: the stack's own)."""
    region = region or state['region']
    workspace = pathlib.Path(workspace)
    admin = state['users']['admin']
    return {
        'DEFAULT': {'log_dir': workspace / 'logs',
                    'log_file': 'tempest.log'},
        'oslo_concurrency': {'lock_path': workspace / 'tempest_lock'},
        'auth': {
            'use_dynamic_credentials': 'true',
            'create_isolated_networks': 'false',
            'admin_username': 'admin',
            'admin_password': admin['password'],
            'admin_project_name': admin['project_name'],
            'admin_domain_name': stack.DEFAULT_DOMAIN,
            'default_credentials_domain_name': stack.DEFAULT_DOMAIN,
        },
        'identity': {
            'uri_v3': state['keystone_url'],
            'auth_version': 'v3',
            'region': region,
            'v3_endpoint_type': 'public',
            # a stack with TLS (--scaled): its own CA, for every client
            **({'ca_certificates_file': state['ca_file']}
               if state.get('ca_file') else {}),
        },
        'service_available': {
            'glance': 'true',
            # Only Keystone, Glance and the compute endpoint are there.
            'nova': 'false', 'neutron': 'false', 'cinder': 'false',
            'swift': 'false',
        },
        'compute': {'catalog_type': 'compute', 'region': region,
                    'endpoint_type': 'publicURL'},
        'image': {'catalog_type': 'image', 'region': region,
                  'endpoint_type': 'publicURL'},
        # max_microversion: the plugin reads the endpoint's version document
        'compute_api': {'mode': mode,
                        'max_request_body_size': MAX_REQUEST_BODY_SIZE},
    }


def make_workspace(state, directory, region=None, mode='standalone'):
    """``tempest init DIRECTORY`` (registered in a workspace file beside
    it, not in ``~/.tempest``) and the stack's ``etc/tempest.conf``.
    Returns the path of the tempest.conf."""
    directory = pathlib.Path(directory).resolve()
    if directory.exists():
        shutil.rmtree(directory)
    log = pathlib.Path(state['workdir']) / 'logs' / 'setup' / 'tempest.log'
    log.parent.mkdir(parents=True, exist_ok=True)
    stack.run_command(
        [TEMPEST, 'init', '--name', f'compute-api-{uuid.uuid4().hex[:8]}',
         '--workspace-path', directory.parent / f'{directory.name}.yaml',
         directory], log, cwd=directory.parent)
    conf = directory / 'etc' / 'tempest.conf'
    stack.write_ini(conf, tempest_conf_sections(state, directory, region,
                                                mode))
    return conf


def inventory(state):
    """Ids of the projects, users and images in Keystone and Glance."""
    admin = stack.get_session(state, 'admin')
    found = {}
    for kind in ('projects', 'users'):
        reply = stack._keystone(state, admin, 'GET', f'/{kind}')
        found[kind] = {item['id'] for item in reply[kind]}
    images, path = set(), '/v2/images?limit=100'
    while path:
        response = stack._check(stack._glance(state, admin, 'GET', path),
                                'list images')
        body = response.json()
        images.update(image['id'] for image in body['images'])
        path = body.get('next')
    found['images'] = images
    return found


def leftovers(before, after):
    """``{kind: ids}`` present after a run but not before it."""
    return {kind: sorted(after[kind] - before[kind]) for kind in after
            if after[kind] - before[kind]}


def run(state, directory, region=None, mode='standalone', extra_args=()):
    """Run the plugin's tests in a fresh workspace; returns
    ``(tempest exit status, leftovers)``."""
    make_workspace(state, directory, region, mode)
    before = inventory(state)
    env = {k: v for k, v in os.environ.items()
           if k not in ('TEMPEST_CONFIG_DIR', 'TEMPEST_CONFIG')}
    status = subprocess.run(
        [str(TEMPEST), 'run', '--regex', PLUGIN_REGEX, *extra_args],
        cwd=directory, env=env, stdin=subprocess.DEVNULL,
        check=False).returncode
    return status, leftovers(before, inventory(state))


def _run_in_nova(state, directory, extra_args):
    from tests import nova
    region = f'{nova.REGION}-{uuid.uuid4().hex[:8]}'
    instance = nova.start_nova(state, nova.prepare_databases(state),
                               region=region)
    try:
        unregister = nova.register_region(state, instance['url'] + '/v2.1',
                                          region)
        try:
            return run(state, directory, region, 'extension', extra_args)
        finally:
            unregister()
    finally:
        stack.stop_process(instance['pid'])


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tests.tempest_run',
        description='Run compute-api\'s tempest plugin against a stack.')
    parser.add_argument('--workdir', default=str(stack.DEFAULT_WORKDIR),
                        help='the stack\'s workdir (default: %(default)s)')
    parser.add_argument('--workspace',
                        help='the tempest workspace to make (default: '
                             'WORKDIR/tempest, or WORKDIR/tempest-nova)')
    parser.add_argument('--nova', action='store_true',
                        help='against Nova\'s API with compute-api\'s '
                             'filter (extension mode)')
    parser.add_argument('tempest_args', nargs='*',
                        help='more arguments for "tempest run"')
    args = parser.parse_args(argv)
    try:
        state = stack.load_state(args.workdir)
        directory = pathlib.Path(args.workspace or (
            pathlib.Path(state['workdir'])
            / ('tempest-nova' if args.nova else 'tempest')))
        if args.nova:
            status, left = _run_in_nova(state, directory, args.tempest_args)
        else:
            status, left = run(state, directory,
                               extra_args=args.tempest_args)
    except stack.StackError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    for kind, ids in left.items():
        print(f'left behind by tempest: {len(ids)} {kind}: '
              f'{", ".join(ids)}', file=sys.stderr)
    mode = 'extension' if args.nova else 'standalone'
    print(f'tempest workspace: {directory}')
    print(f'tempest {mode} cleanup: {0 if left else 1} passed, '
          f'{1 if left else 0} failed')
    return 1 if status or left else 0


if __name__ == '__main__':
    sys.exit(main())

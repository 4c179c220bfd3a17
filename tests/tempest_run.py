"""compute-api's tempest plugin against a stack of ``tests/stack/``.

``python -m tests.tempest_run --workdir DIR [--nova] [--config NAME ...]``
runs the plugin's tests as an operator does (doc/source/verify.rst): for
each tempest configuration, ``tempest init`` makes a workspace, its
``etc/tempest.conf`` is written for the stack described by
``DIR/stack.json``, and ``tempest run --regex
'^compute_api_tempest_plugin\\.'``
runs in it. The projects, users and images in Keystone and Glance are
counted before and after each run: tempest must leave none behind.

The configurations (:data:`CONFIGS`) are the ways a correct deployment is
commonly described to tempest; on each, every test must pass or skip:

``default``
    dynamic credentials made by an admin, the public endpoints of the
    compute service's region, the compute endpoint without a project id;
``project-url-tls``
    a region registered after the others with ``internal`` endpoints only,
    each behind TLS (HAProxy, a CA of the run's own given to tempest as
    ``[identity] ca_certificates_file``), the compute endpoint with the
    project id (``.../v2.1/$(project_id)s``), and ``[auth] tempest_roles =
    member``;
``accounts``
    pre-provisioned credentials (an ``accounts.yaml`` of members and
    readers in projects made for the run) and no admin credentials at all;
``admin-roles``
    ``[auth] tempest_roles = admin``: every persona is an admin.

And two wrong deployments, on which the named tests must fail, and only
those (:data:`WRONG`): a policy letting a reader delete, and (with
``--nova``) Nova without compute-api's filter.

``--nova`` runs them against Nova's own API with compute-api's filter
(``tests/nova.py``), in a region of its own, with ``[compute_api] mode =
extension``. For each run the output ends with ``tempest <mode> <config>:
N passed, N failed[, N skipped]`` and ``tempest <mode> <config> cleanup: N
passed, N failed``; a wrong deployment gives one line, ``tempest <mode>
<config> (wrong deployment): 1 passed, 0 failed`` when exactly the named
tests failed. The exit status is 0 only if every line reports no failure.
"""

import argparse
import contextlib
import io
import os
import pathlib
import secrets
import subprocess
import sys
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
import subunit
import testtools
import yaml

from tests import stack
from tests.stack import haproxy
from tests.stack import tls

PLUGIN_REGEX = r'^compute_api_tempest_plugin\.'
TEMPEST = pathlib.Path(sys.executable).parent / 'tempest'
STESTR = pathlib.Path(sys.executable).parent / 'stestr'
# [oslo_middleware] max_request_body_size: the default, in both modes
MAX_REQUEST_BODY_SIZE = 114688
CONFIGS = ('default', 'project-url-tls', 'accounts', 'admin-roles')
READER_MAY_DELETE = '"os_compute_api:images:delete": "role:reader"\n'
# wrong deployment: the tests that must fail on it, and only those
WRONG = {
    'reader-may-delete': {'ImagesDeleteNegativeTest.test_delete_as_reader'},
    # Nova's own image proxy: Glance refuses the reader (no policy rule
    # named), and an id with an encoded "?" deletes the image
    'without-filter': {
        'ImagesDeleteNegativeTest.test_delete_as_reader',
        'ImagesDeleteNegativeTest.test_smuggled_ids_are_not_found',
    },
}
# pre-provisioned accounts: a member and a reader in each project, two
# projects per tempest worker (doc/source/verify.rst)
ACCOUNTS = {name: ('member', 'reader') for name in 'abcd'}


def tempest_conf_sections(state, workspace, region=None, mode='standalone',
                          *, identity_url=None, interface='public',
                          ca_file=None, tempest_roles=None,
                          accounts_file=None):
    """tempest.conf for the stack of ``state``: Keystone v3 (at
    ``identity_url``), dynamic credentials made by the stack's admin (or
    the pre-provisioned ``accounts_file``), and the ``interface`` endpoints
    of ``region`` (default: the stack's own)."""
    region = region or state['region']
    workspace = pathlib.Path(workspace)
    ca_file = ca_file or state.get('ca_file')
    if accounts_file:
        auth = {'use_dynamic_credentials': 'false',
                'test_accounts_file': accounts_file}
    else:
        admin = state['users']['admin']
        auth = {'use_dynamic_credentials': 'true',
                'admin_username': 'admin',
                'admin_password': admin['password'],
                'admin_project_name': admin['project_name'],
                'admin_domain_name': stack.DEFAULT_DOMAIN}
    if tempest_roles:
        auth['tempest_roles'] = tempest_roles
    endpoint = {'region': region, 'endpoint_type': interface}
    return {
        'DEFAULT': {'log_dir': workspace / 'logs',
                    'log_file': 'tempest.log'},
        'oslo_concurrency': {'lock_path': workspace / 'tempest_lock'},
        'auth': {'create_isolated_networks': 'false',
                 'default_credentials_domain_name': stack.DEFAULT_DOMAIN,
                 **auth},
        'identity': {
            'uri_v3': identity_url or state['keystone_url'],
            'auth_version': 'v3',
            'region': region,
            'v3_endpoint_type': interface,
            **({'ca_certificates_file': ca_file} if ca_file else {}),
        },
        'service_available': {
            'glance': 'true',
            # Only Keystone, Glance and the compute endpoint are there.
            'nova': 'false', 'neutron': 'false', 'cinder': 'false',
            'swift': 'false',
        },
        'compute': {'catalog_type': 'compute', **endpoint},
        'image': {'catalog_type': 'image', **endpoint},
        # max_microversion: the plugin reads the endpoint's version document
        'compute_api': {'mode': mode,
                        'max_request_body_size': MAX_REQUEST_BODY_SIZE},
    }


def make_workspace(state, directory, **conf):
    """``tempest init DIRECTORY`` (registered in a workspace file beside
    it, not in ``~/.tempest``) and its ``etc/tempest.conf``
    (:func:`tempest_conf_sections` with ``conf``)."""
    directory = pathlib.Path(directory).resolve()
    if directory.exists():
        subprocess.run(['rm', '-rf', directory], check=True)
    log = pathlib.Path(state['workdir']) / 'logs' / 'setup' / 'tempest.log'
    log.parent.mkdir(parents=True, exist_ok=True)
    stack.run_command(
        [TEMPEST, 'init', '--name', f'compute-api-{uuid.uuid4().hex[:8]}',
         '--workspace-path', directory.parent / f'{directory.name}.yaml',
         directory], log, cwd=directory.parent)
    conf_path = directory / 'etc' / 'tempest.conf'
    stack.write_ini(conf_path, tempest_conf_sections(state, directory,
                                                     **conf))
    return conf_path


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


def results(directory):
    """``{test: status}`` of the workspace's last run; a test is named
    ``Class.test_method`` (tempest's attributes dropped)."""
    stream = subprocess.run([STESTR, 'last', '--subunit'], cwd=directory,
                            capture_output=True, check=False).stdout
    found = {}

    def record(test):
        if test['status'] == 'exists':
            return
        test_id = test['id'].split('[')[0]
        if test_id.startswith('setUpClass ('):  # a class skipped or failed
            test_id = test_id[len('setUpClass ('):].rstrip(')') + '.*'
        found['.'.join(test_id.rsplit('.', 2)[-2:])] = test['status']
    result = testtools.StreamToDict(record)
    result.startTestRun()
    subunit.ByteStreamToStreamResult(io.BytesIO(stream)).run(result)
    result.stopTestRun()
    return found


def run(state, directory, extra_args=(), more_leftovers=dict, **conf):
    """Run the plugin's tests in a fresh workspace; returns
    ``(results, leftovers)`` (with what ``more_leftovers()`` finds)."""
    make_workspace(state, directory, **conf)
    before = inventory(state)
    env = {k: v for k, v in os.environ.items()
           if k not in ('TEMPEST_CONFIG_DIR', 'TEMPEST_CONFIG')}
    subprocess.run([str(TEMPEST), 'run', '--regex', PLUGIN_REGEX,
                    *extra_args], cwd=directory, env=env,
                   stdin=subprocess.DEVNULL, check=False)
    return results(directory), {**leftovers(before, inventory(state)),
                                **more_leftovers()}


# What the configurations need ----------------------------------------------

def add_region(state, compute_url, **urls):
    """A new region (listed after the stack's) with endpoints for the
    compute API at ``compute_url`` and (``identity_url``, ``image_url``,
    ``interfaces``: see ``nova.register_region``) the stack's Keystone and
    Glance; returns its name and a callable that removes it again."""
    from tests import nova
    region = f'Region-{uuid.uuid4().hex[:8]}'
    return region, nova.register_region(state, compute_url, region, **urls)


@contextlib.contextmanager
def tls_proxy(state, backends):
    """HAProxy terminating TLS in front of ``{name: http url}``, with a CA
    of its own; yields ``({name: https url}, ca file)``."""
    directory = pathlib.Path(state['workdir']) / f'tls-{uuid.uuid4().hex[:8]}'
    directory.mkdir()
    log = directory / 'setup.log'
    ca_file = tls.make_ca(directory, log, subject='/CN=tempest run CA')
    cert = tls.make_server_cert(directory, log)
    ports = dict(zip(backends, stack.free_ports(len(backends)), strict=True))
    config = ['defaults', '    mode http', '    timeout connect 5s',
              '    timeout client 120s', '    timeout server 120s']
    urls = {}
    for name, url in backends.items():
        split = url.split('/', 3)
        config += [f'frontend {name}',
                   f'    bind {stack.HOST}:{ports[name]} ssl crt {cert}',
                   f'    default_backend {name}', f'backend {name}',
                   f'    server {name} {split[2]}']
        urls[name] = (f'https://{stack.HOST}:{ports[name]}/'
                      + (split[3] if len(split) > 3 else ''))
    (directory / 'haproxy.cfg').write_text('\n'.join(config) + '\n')
    pid = stack.spawn([haproxy.program(), '-db', '-f',
                       directory / 'haproxy.cfg'],
                      directory / 'haproxy.log', dict(os.environ))
    try:
        for port in ports.values():
            stack.wait_tcp('haproxy', port)
        yield {name: url.rstrip('/') for name, url in urls.items()}, \
            str(ca_file)
    finally:
        stack.stop_process(pid)


@contextlib.contextmanager
def accounts(state, directory):
    """Projects and users for ``accounts.yaml`` (:data:`ACCOUNTS`), made
    with the stack's admin and removed afterwards; yields the file and a
    callable returning what tempest left with the users that outlive the
    run: access rules (Keystone keeps an application credential's access
    rules when it is deleted, and only their user may list them)."""
    admin = stack.get_session(state, 'admin')

    def call(method, path, body=None):
        return stack._keystone(state, admin, method, path, body)
    roles = {r['name']: r['id'] for r in call('GET', '/roles')['roles']}
    made, entries = [], []
    try:
        for short, project_roles in ACCOUNTS.items():
            project = call('POST', '/projects', {'project': {
                'name': f'tempest-{short}-{uuid.uuid4().hex[:8]}',
                'domain_id': 'default'}})['project']
            made.append(f'/projects/{project["id"]}')
            for role in project_roles:
                password = secrets.token_urlsafe(18)
                user = call('POST', '/users', {'user': {
                    'name': f'{project["name"]}-{role}', 'password': password,
                    'domain_id': 'default'}})['user']
                made.append(f'/users/{user["id"]}')
                call('PUT', f'/projects/{project["id"]}/users/{user["id"]}'
                            f'/roles/{roles[role]}')
                entries.append({
                    'username': user['name'], 'password': password,
                    'project_name': project['name'],
                    'user_domain_name': stack.DEFAULT_DOMAIN,
                    'project_domain_name': stack.DEFAULT_DOMAIN,
                    'roles': [role]})
        path = pathlib.Path(directory).resolve().parent / (
            pathlib.Path(directory).name + '-accounts.yaml')
        path.write_text(yaml.safe_dump(entries))

        def access_rules():
            found = []
            for entry in entries:
                user = v3.Password(
                    auth_url=state['keystone_url'], **{
                        k: entry[k] for k in (
                            'username', 'password', 'project_name',
                            'user_domain_name', 'project_domain_name')})
                session = ks_session.Session(auth=user)
                found += [rule['id'] for rule in stack._keystone(
                    state, session, 'GET',
                    f'/users/{session.get_user_id()}/access_rules')[
                        'access_rules']]
            return {'access rules': found} if found else {}
        yield str(path), access_rules
    finally:
        for item in reversed(made):
            call('DELETE', item)


def compute_service(state, nova_instance, policy_yaml=None):
    """The compute API under test: a new compute-api (with ``policy_yaml``),
    or a new Nova (with its filter unless ``nova_instance == 'bare'``).
    Returns ``(url, pid)``."""
    if nova_instance is None:
        started = stack.start_compute_api(
            state, f'compute-api-{uuid.uuid4().hex[:8]}',
            policy_yaml=policy_yaml)
    else:
        from tests import nova
        started = nova.start_nova(
            state, nova.prepare_databases(state),
            with_filter=nova_instance != 'bare', policy_yaml=policy_yaml,
            region=state['region'])
    return started['url'], started['pid']


@contextlib.contextmanager
def configuration(state, name, compute_url, directory):
    """``tempest_conf_sections`` options for configuration ``name`` with
    the compute API at ``compute_url`` (whatever it needs set up)."""
    plain = {'identity': state['keystone_url'], 'image': state['glance_url']}
    if name == 'project-url-tls':
        with tls_proxy(state, {**plain, 'compute': compute_url}) as (
                urls, ca_file):
            region, remove = add_region(
                state, urls['compute'] + '/v2.1/$(project_id)s',
                identity_url=urls['identity'], image_url=urls['image'],
                interfaces=('internal',))
            try:
                yield {'region': region, 'identity_url': urls['identity'],
                       'interface': 'internal', 'ca_file': ca_file,
                       'tempest_roles': 'member'}
            finally:
                remove()
        return
    region, remove = add_region(state, compute_url + '/v2.1')
    try:
        if name == 'accounts':
            with accounts(state, directory) as (accounts_file, check):
                yield {'region': region, 'accounts_file': accounts_file,
                       'more_leftovers': check}
        else:
            yield {'region': region,
                   'tempest_roles': 'admin' if name == 'admin-roles' else None}
    finally:
        remove()


def report(label, found, left, wrong=None):
    """Print the summary lines of one run; returns the number of failed
    checks."""
    failed = sorted(t for t, s in found.items() if s == 'fail')
    if wrong is not None:
        ok = bool(found) and set(failed) == wrong and not left
        print(f'{label}: failed as it must: {", ".join(failed) or "none"}'
              + ('' if ok else f' (expected: {", ".join(sorted(wrong))})'))
        print(f'{label} (wrong deployment): {int(ok)} passed, '
              f'{int(not ok)} failed')
        return int(not ok)
    passed = sum(1 for s in found.values() if s == 'success')
    skipped = sum(1 for s in found.values() if s == 'skip')
    bad = len(found) - passed - skipped or (0 if found else 1)
    for test in failed:
        print(f'{label}: FAILED {test}')
    for kind, ids in left.items():
        print(f'left behind by tempest: {len(ids)} {kind}: '
              f'{", ".join(ids)}', file=sys.stderr)
    print(f'{label}: {passed} passed, {bad} failed'
          + (f', {skipped} skipped' if skipped else ''))
    print(f'{label} cleanup: {int(not left)} passed, {int(bool(left))} '
          'failed')
    return bad + bool(left)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tests.tempest_run',
        description='Run compute-api\'s tempest plugin against a stack.')
    parser.add_argument('--workdir', default=str(stack.DEFAULT_WORKDIR),
                        help='the stack\'s workdir (default: %(default)s)')
    parser.add_argument('--workspace',
                        help='the directory of the tempest workspaces '
                             '(default: WORKDIR/tempest[-nova])')
    parser.add_argument('--nova', action='store_true',
                        help='against Nova\'s API with compute-api\'s '
                             'filter (extension mode)')
    parser.add_argument('--config', action='append',
                        choices=CONFIGS + tuple(WRONG),
                        help='a configuration to run (repeatable; default: '
                             'all, and the wrong deployments)')
    parser.add_argument('tempest_args', nargs='*',
                        help='more arguments for "tempest run"')
    args = parser.parse_args(argv)
    mode = 'extension' if args.nova else 'standalone'
    names = args.config or [*CONFIGS, 'reader-may-delete'] + (
        ['without-filter'] if args.nova else [])
    try:
        state = stack.load_state(args.workdir)
        top = pathlib.Path(args.workspace or pathlib.Path(state['workdir']) / (
            'tempest-nova' if args.nova else 'tempest'))
        top.mkdir(parents=True, exist_ok=True)
        failures, pids = 0, []
        try:
            shared = state['compute_url']
            if args.nova:
                shared, pid = compute_service(state, 'filter')
                pids.append(pid)
            for name in names:
                compute_url = shared
                if name in WRONG:
                    url, pid = compute_service(
                        state, ('bare' if name == 'without-filter' else
                                'filter') if args.nova else None,
                        READER_MAY_DELETE if name == 'reader-may-delete'
                        else None)
                    pids.append(pid)
                    compute_url = url
                with configuration(state, name, compute_url,
                                   top / name) as conf:
                    found, left = run(state, top / name, args.tempest_args,
                                      mode=mode, **conf)
                failures += report(f'tempest {mode} {name}', found, left,
                                   WRONG.get(name))
        finally:
            for pid in pids:
                stack.stop_process(pid)
    except stack.StackError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'tempest workspaces: {top}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())

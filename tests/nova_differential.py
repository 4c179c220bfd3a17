"""Differential test: no request Nova routes as an image delete escapes the
filter.

Nova's own ``osapi_compute`` application (the ``api-paste.ini`` installed
with the Nova of this environment: its urlmap, request ids, fault wrapper,
size limit, ``keystonecontext`` and router) is built twice in one process:
as installed, and with compute-api's filter added as
``doc/source/nova-extension.rst`` says, with a rule that denies the delete
to everyone (``"os_compute_api:images:delete": "!"``). ``auth_token`` is
replaced by a stand-in that, like it, removes the identity headers a client
sends and sets those of a valid member token. Nova and the filter each call
a Glance of their own on loopback that records every request.

A third build has the filter at its default rule (a member may delete),
so that the requests it serves go all the way to its own Glance.

A generated corpus (methods, method overrides in the query and in form
bodies in every case, separator and encoding, queries that are not UTF-8,
version roots, ``SCRIPT_NAME`` splits, project segments, image ids, both
version headers and the urlmap's content-type and accept strategies) is sent
to each. The run fails if any request makes Nova's own Glance see a
``DELETE`` through a pipeline with the filter, or the deny-all filter's
Glance see one at all, and also if Nova alone missed one of the known
bypasses or the default-rule filter served nothing (the corpus would then
prove nothing).

Run it from the repository root with a Nova environment
(``tools/bootstrap.sh`` makes ``.venv-nova``)::

    .venv-nova/bin/python -m tests.nova_differential [--count N] [--seed S]

Its last line is the plain ``differential: N passed, N failed`` one.
"""

import argparse
import collections
import http.server
import io
import itertools
import json
import pathlib
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import webob.dec

from tests import nova as nova_mod
from tests.unit import fakes

USER = 'd1ff0000000000000000000000000001'
PROJECT = 'd1ff0000000000000000000000000002'
OTHER_PROJECT = 'd1ff0000000000000000000000000003'
TOKEN = 'differential-token'  # noqa: S105 (a fake token, never checked)
NOVA_AUTHTOKEN = 'keystonemiddleware.auth_token:filter_factory'
STAND_IN = 'tests.nova_differential:identity_factory'
DENY_ALL = '"os_compute_api:images:delete": "!"\n'


class IdentityStandIn:
    """What auth_token does for a valid member token, and nothing else."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        for name in list(req.headers):
            if name.lower().startswith(('x-user', 'x-project', 'x-roles',
                                        'x-identity', 'x-tenant',
                                        'x-service-catalog', 'x-domain')):
                del req.headers[name]
        req.headers['X-Identity-Status'] = 'Confirmed'
        req.headers['X-User-Id'] = USER
        req.headers['X-Project-Id'] = PROJECT
        req.headers['X-Roles'] = 'member,reader'
        # the client's token names the request in the Glances' records
        token = req.headers.get('X-Auth-Token', TOKEN)
        req.environ['keystone.token_auth'] = fakes.user_auth_plugin(
            {'user_id': USER, 'project_id': PROJECT, 'token': token})
        return req.get_response(self.application)


def identity_factory(global_conf, **local_conf):
    return IdentityStandIn


# --------------------------------------------------------------------------
# The corpus

METHODS = ('DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'OPTIONS',
           'delete', 'Delete')
# the methods Nova's router may act on as a delete come more often
METHOD_WEIGHTS = (8, 4, 2, 4, 1, 1, 1, 1, 1)
# (SCRIPT_NAME, what PATH_INFO starts with before the project segment)
ROOTS = (('', '/v2.1'), ('', '/v2'), ('/compute', '/v2.1'),
         ('/compute', '/v2'), ('', ''), ('', '/V2.1'), ('', '//v2.1'),
         ('', '/v2.1/'), ('', '/v2.10'), ('', '/v3'))
PROJECTS = (None, PROJECT, OTHER_PROJECT, PROJECT.upper(), 'not-hex',
            PROJECT + '\n', 'caf\xc3\xa9')
COLLECTIONS = ('images', 'Images', 'IMAGES', 'images/')
QUERIES = (
    '', '_method=DELETE', '_method=delete', 'x=1;_method=DELETE',
    ';_method=DELETE', 'x;_method=delete', '_method=;', '_method=DELETE;',
    '_method=%FF', '_method=GET&x=%FF', '_METHOD=DELETE', '_Method=Delete',
    '%5Fmethod=DELETE', '%5fMETHOD=delete', '_method=%44ELETE',
    '_%6Dethod=DELETE', '_method=DELETE&_method=GET',
    '_method=GET&_method=DELETE', 'x=%FF', 'x=\xff', '\xff_method=DELETE',
    '_method=PUT', '_method=', '_method', 'a=b', 'a=b&c=%C3%A9',
    '_method=delete%00', ' _method=DELETE', '_method+=DELETE')
BOUNDARY = 'b0undary'


def _multipart(name, value):
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; '
            f'name="{name}"\r\n\r\n{value}\r\n--{BOUNDARY}--\r\n')


FORM = 'application/x-www-form-urlencoded'
MULTIPART = f'multipart/form-data; boundary={BOUNDARY}'
# (Content-Type, body)
BODIES = (
    (None, ''), ('application/json', ''), ('application/json', '{}'),
    (FORM, '_method=DELETE'), (FORM, 'x=1&_method=delete'),
    (FORM, '%5Fmethod=DELETE'), (FORM, 'x=1'),
    (FORM + '; charset=UTF-8', '_METHOD=DELETE'),
    ('Application/X-WWW-Form-Urlencoded', '_method=DELETE'),
    (MULTIPART, _multipart('_method', 'DELETE')),
    (MULTIPART, _multipart('x', '1')),
    ('Multipart/Form-Data; boundary=' + BOUNDARY,
     _multipart('_method', 'delete')),
    ('text/plain', '_method=DELETE'),
    ('application/json;version=2.1', ''), ('application/json;version=2', ''),
    ('application/json;version=2.1/x', ''),
    ('application/json;version=2/x', ''),
    (FORM + ' ; charset=latin-1', '_method=DELETE'),
    (FORM, 'name=build_method'),
    ('application/vnd.platform+json', '{"_method": "DELETE"}'),
)
# extra headers: both version headers and the urlmap's accept strategy
HEADERS = (
    {}, {'OpenStack-API-Version': 'compute 2.1'},
    {'OpenStack-API-Version': 'compute 2.35'},
    {'OpenStack-API-Version': 'compute 2.36'},
    {'OpenStack-API-Version': 'compute latest'},
    {'OpenStack-API-Version': 'compute 2.105'},
    {'OpenStack-API-Version': 'compute abc'},
    {'OpenStack-API-Version': 'compute 2.1, compute 2.36'},
    {'OpenStack-API-Version': 'volume 2.36'},
    {'X-OpenStack-Nova-API-Version': '2.1'},
    {'X-OpenStack-Nova-API-Version': '2.36'},
    {'OpenStack-API-Version': 'compute 2.36',
     'X-OpenStack-Nova-API-Version': '2.1'},
    {'OpenStack-API-Version': 'compute 2.2',
     'X-OpenStack-Nova-API-Version': '2.99'},
    {'Accept': 'application/json;version=2.1'},
    {'Accept': 'application/json;version=2'},
    {'Accept': 'application/json;version=2.1/x'},
    {'Accept': 'application/json;version=2/x'},
    {'OpenStack-API-Version': 'compute 2.36, compute 2.1'},
    {'X-OpenStack-Nova-API-Version': '2.1, 2.36'},
    {'X-OpenStack-Nova-API-Version': '2.36, 2.1'},
)


def _ids():
    real = str(uuid.uuid4())
    return (real, real.upper(), 'not-a-uuid', real + '\n', real + '?x',
            real + '#x', real + '/', real + '/metadata/k', '.', '..',
            real + '.json', real + '.xml', real + ' ', '', real + '\r',
            real + '%3F', real + '\x00', real + '\xc3\xa9')


# The requests the issue found reaching Nova's delete past the filter
# (method, query); each is in the corpus on both URL forms and both roots.
KNOWN_BYPASSES = (
    ('GET', '_method=DELETE'), ('GET', 'x=1;_method=DELETE'),
    ('GET', ';_method=DELETE'), ('HEAD', 'x;_method=delete'),
    ('DELETE', '_method=;'), ('DELETE', '_method=DELETE;'),
    ('DELETE', '_method=%FF'), ('DELETE', '_method=GET&x=%FF'))

Request = collections.namedtuple(
    'Request',
    'method script_name path query content_type body headers chunked')


def corpus(count, seed):
    """``count`` requests: every known bypass on both URL forms and both
    roots, then random combinations of the dimensions above."""
    rng = random.Random(seed)
    requests = []
    for (method, query), root, project in itertools.product(
            KNOWN_BYPASSES, ('/v2.1', '/v2'), (None, PROJECT)):
        segment = '' if project is None else '/' + project
        requests.append(Request(method, '', f'{root}{segment}/images/'
                                f'{uuid.uuid4()}', query, None, '', {},
                                False))
    while len(requests) < count:
        # the forms Nova routes come more often
        (script_name, root), = rng.choices(ROOTS, (4, 3, 2, 2, 2, 1, 2, 1,
                                                   1, 1))
        project, = rng.choices(PROJECTS, (4, 4, 1, 1, 1, 1, 1))
        segment = '' if project is None else '/' + project
        collection, = rng.choices(COLLECTIONS, (6, 1, 1, 2))
        path = f'{root}{segment}/{collection}/{rng.choice(_ids())}'
        content_type, body = rng.choice(BODIES)
        method, = rng.choices(METHODS, METHOD_WEIGHTS)
        requests.append(Request(method, script_name, path,
                                rng.choice(QUERIES), content_type, body,
                                rng.choice(HEADERS), rng.random() < 0.2))
    return requests


def environ(request, token=TOKEN):
    """What a WSGI server hands over for ``request``: the path decoded,
    strings holding bytes as latin-1."""
    body = request.body.encode('latin-1')
    env = {
        'REQUEST_METHOD': request.method,
        'SCRIPT_NAME': request.script_name,
        'PATH_INFO': request.path,
        'QUERY_STRING': request.query,
        'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '8774',
        'SERVER_PROTOCOL': 'HTTP/1.1', 'REMOTE_ADDR': '127.0.0.1',
        'HTTP_HOST': '127.0.0.1:8774',
        'HTTP_X_AUTH_TOKEN': token,
        'HTTP_X_ROLES': 'admin',  # a client's: the stand-in removes it

        'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http',
        'wsgi.input': io.BytesIO(body), 'wsgi.errors': io.StringIO(),
        'wsgi.multithread': False, 'wsgi.multiprocess': False,
        'wsgi.run_once': False,
    }
    if request.chunked:  # a body of unknown length, as after a chunked one
        env['wsgi.input_terminated'] = True
    else:
        env['CONTENT_LENGTH'] = str(len(body))
    if request.content_type is not None:
        env['CONTENT_TYPE'] = request.content_type
    for name, value in request.headers.items():
        env['HTTP_' + name.upper().replace('-', '_')] = value
    return env


def call(app, request, token=TOKEN):
    """The status of ``app``'s answer to ``request`` sent with ``token``."""
    status = []

    def start_response(line, headers, exc_info=None):
        status.append(int(line.split()[0]))
    body = app(environ(request, token), start_response)
    try:
        for _ in body:
            pass
    finally:
        if hasattr(body, 'close'):
            body.close()
    return status[0]


# --------------------------------------------------------------------------
# The two Novas


def build_apps(directory, nova_glance, deny_glance, allow_glance):
    """Nova alone, Nova with the filter denying everyone, and Nova with the
    filter at its default rule, as WSGI callables."""
    from nova import config
    from paste import deploy as paste_deploy
    directory = pathlib.Path(directory)
    paste = nova_mod.installed_paste_ini()
    if NOVA_AUTHTOKEN not in paste:
        raise SystemExit(f'Nova\'s api-paste.ini no longer names '
                         f'{NOVA_AUTHTOKEN}')
    paste = paste.replace(NOVA_AUTHTOKEN, STAND_IN)
    (directory / 'nova.paste.ini').write_text(paste)
    names = ['nova']
    for name, glance_url, policy in (('deny', deny_glance, DENY_ALL),
                                     ('allow', allow_glance, '{}\n')):
        filter_dir = directory / name
        filter_dir.mkdir()
        (filter_dir / 'compute_api.conf').write_text(
            f'[glance]\nendpoint_override = {glance_url}\n'
            'connect_retries = 0\nstatus_code_retries = 0\n'
            '[oslo_policy]\npolicy_file = policy.yaml\n')
        (filter_dir / 'policy.yaml').write_text(policy)
        (directory / f'{name}.paste.ini').write_text(
            nova_mod.paste_with_filter(paste, filter_dir))
        names.append(name)
    (directory / 'nova.conf').write_text(
        '[DEFAULT]\ntransport_url = fake:/\n'
        f'log_file = {directory}/nova.log\nuse_stderr = false\n'
        '[api]\nauth_strategy = keystone\n'
        f'[glance]\nendpoint_override = {nova_glance}\nnum_retries = 0\n'
        '[service_user]\nsend_service_user_token = false\n'
        f'[oslo_concurrency]\nlock_path = {directory}/locks\n')
    config.parse_args([], default_config_files=[str(directory /
                                                    'nova.conf')])
    return [paste_deploy.loadapp(f'config:{directory / name}.paste.ini',
                                 name='osapi_compute') for name in names]


class RecordingGlance(http.server.BaseHTTPRequestHandler):
    """A Glance that answers every DELETE 204 (and anything else 404) and
    records the token of each DELETE; ``GET /_recorded`` lists them."""

    protocol_version = 'HTTP/1.1'
    recorded = []

    def log_message(self, *args):
        pass

    def answer(self, status, body=b''):
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self):
        self.recorded.append(self.headers.get('X-Auth-Token'))
        self.answer(204)

    def do_GET(self):
        if self.path == '/_recorded':
            self.answer(200, json.dumps(self.recorded).encode())
        else:
            self.answer(404, b'{"message": "no such image"}')

    do_HEAD = do_POST = do_PUT = do_PATCH = do_GET


class GlanceProcess:
    """A RecordingGlance in a process of its own (``--glance``): Novas up to
    32 patch the process they run in for eventlet, where a server thread
    of the same process would block every green thread."""

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.nova_differential', '--glance'],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith('http://'):
            self.__exit__()
            raise SystemExit('the recording Glance did not start')
        return self

    def recorded(self):
        with urllib.request.urlopen(self.url + '/_recorded') as resp:
            return set(json.load(resp))

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


def serve_glance():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                             RecordingGlance)
    print(f'http://127.0.0.1:{server.server_address[1]}', flush=True)
    server.serve_forever()


def run(requests):
    """Send every request to the three Novas; return the findings."""
    apps = ('alone', 'deny', 'allow')
    with GlanceProcess() as nova_glance, GlanceProcess() as deny_glance, \
            GlanceProcess() as allow_glance, \
            tempfile.TemporaryDirectory(prefix='nova-differential-') as tmp:
        built = dict(zip(apps, build_apps(
            tmp, nova_glance.url, deny_glance.url, allow_glance.url),
            strict=True))
        denied = {}
        for i, request in enumerate(requests):
            for name, app in built.items():
                status = call(app, request, f'req-{i}-{name}')
                if name == 'deny':
                    denied[i] = status
        deleted = nova_glance.recorded()
        deny_called = deny_glance.recorded()
        allow_called = allow_glance.recorded()
    found = {'nova_deleted': [], 'escaped': [], 'denied_but_called': [],
             'statuses': collections.Counter(),
             'allowed_served': len(allow_called)}
    for i, request in enumerate(requests):
        for name in ('deny', 'allow'):
            if f'req-{i}-{name}' in deleted:
                found['escaped'].append((name, request, denied[i]))
        if f'req-{i}-deny' in deny_called:
            found['denied_but_called'].append((request, denied[i]))
        if f'req-{i}-alone' in deleted:
            found['nova_deleted'].append(request)
            key = ('OPTIONS (CORS)' if request.method == 'OPTIONS'
                   else denied[i])
            found['statuses'][key] += 1
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--count', type=int, default=20000,
                        help='requests in the corpus (default 20000)')
    parser.add_argument('--seed', type=int, default=20261202)
    parser.add_argument('--glance', action='store_true',
                        help='be a recording Glance (used by the run)')
    args = parser.parse_args(argv)
    if args.glance:
        return serve_glance()
    try:
        from importlib import metadata
        version = metadata.version('nova')
    except ImportError:
        raise SystemExit('nova is not installed here: run this with '
                         '.venv-nova/bin/python (tools/bootstrap.sh)')
    requests = corpus(args.count, args.seed)
    started = time.monotonic()
    found = run(requests)
    seconds = time.monotonic() - started
    known = {(r.method, r.path, r.query) for r in found['nova_deleted']}
    known_missed = sum(
        1 for r in requests[:len(KNOWN_BYPASSES) * 4]
        if (r.method, r.path, r.query) not in known)
    print(f'nova {version}: {len(requests)} requests (seed {args.seed}) '
          f'in {seconds:.0f} s')
    print(f'Nova alone deleted through {len(found["nova_deleted"])} of '
          f'them; with the filter denying everyone those were answered '
          f'{dict(sorted(found["statuses"].items(), key=str))} (CORS '
          f'answers every OPTIONS 200); with the filter at its default '
          f'rule, {found["allowed_served"]} requests were served by it')
    checks = [
        ('no request reaches Nova\'s images delete past the filter, '
         'whatever its rule', found['escaped']),
        ('the filter never calls Glance against its deny-all rule',
         found['denied_but_called']),
        ('Nova alone deletes through every known bypass of the corpus',
         ['missed'] * known_missed),
        ('the filter at its default rule serves deletes',
         [] if found['allowed_served'] else ['none served']),
    ]
    failed = 0
    for what, bad in checks:
        print(f'{"ok" if not bad else "FAILED"}: {what}'
              + (f' ({len(bad)} requests)' if bad else ''))
        for item in bad[:20]:
            print(f'    {item!r}')
        failed += bool(bad)
    print(f'differential: {len(checks) - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

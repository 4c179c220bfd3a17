"""The API reference against the service: routes, statuses and samples.

These tests read api-ref/source as text (no Sphinx needed), so that a route
added without documentation, a status the reference forgets, or a sample
that no longer matches what the service answers fails the unit tests.
"""

import json
import os
import re

from oslotest import base as test_base
import webob
import yaml

from compute_api import deploy
from compute_api.api import faults
from compute_api.api import router
from compute_api.api import versions
from tests.unit import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SOURCE = os.path.join(REPO, 'api-ref', 'source')
SAMPLES = os.path.join(SOURCE, 'samples')
IMAGES_INC = os.path.join(SOURCE, 'images.inc')
SAMPLE_HOST = 'http://openstack.example.com'
SAMPLE_IMAGE = '70a599e0-31e7-49b7-b260-868f441e862b'

# Every status the service can answer a routed call with (images.inc, "Order
# of evaluation", and status.yaml give the condition behind each).
ROUTED_STATUSES = {204, 400, 401, 403, 404, 405, 406, 409, 413, 503}

# The 401 comes from keystonemiddleware's auth_token, which writes its own
# JSON body; every other error sample is a Compute fault.
AUTH_TOKEN_SAMPLES = {'images/image-delete-401-resp.json'}
# Samples written by keystonemiddleware's real auth_token (which the unit
# pipeline replaces with a double): only their shape is checked here.
FROM_AUTH_TOKEN = AUTH_TOKEN_SAMPLES | {
    'images/image-delete-503-identity-resp.json'}
# The sample of each error case images.inc documents, by (status, reason).
CASE_SAMPLES = {
    (400, 'version'): 'image-delete-400-version-resp.json',
    (400, 'project'): 'image-delete-400-project-resp.json',
    (401, None): 'image-delete-401-resp.json',
    (401, 'image_auth'): 'image-delete-401-image-resp.json',
    (403, 'policy'): 'image-delete-403-policy-resp.json',
    (403, 'image'): 'image-delete-403-image-resp.json',
    (404, 'route'): 'image-delete-404-route-resp.json',
    (404, 'removed'): 'image-delete-404-removed-resp.json',
    (404, 'image'): 'image-delete-404-image-resp.json',
    (405, None): 'image-delete-405-resp.json',
    (406, None): 'image-delete-406-resp.json',
    (409, None): 'image-delete-409-resp.json',
    (413, None): 'image-delete-413-resp.json',
    (503, 'image'): 'image-delete-503-image-resp.json',
    (503, 'identity'): 'image-delete-503-identity-resp.json',
    (503, 'policy'): 'image-delete-503-policy-resp.json',
}
VERSION_SAMPLES = {
    'versions/versions-get-resp.json': '/',
    'versions/v21-version-get-resp.json': '/v2.1/',
}

_METHOD_RE = re.compile(r'^\.\. rest_method::\s+(\S+)\s+(\S+)\s*$')
_STATUS_RE = re.compile(r'^\.\. rest_status_code::\s+(\S+)\s+(\S+)\s*$')
_STATUS_ITEM_RE = re.compile(r'^\s+-\s+(\d{3})(?::\s*(\w+))?\s*$')
_SAMPLE_CODE_RE = re.compile(r'-(\d{3})(?:-[a-z]+)?-resp\.json$')


def read(path):
    with open(path) as f:
        return f.read()


def parse_inc(text):
    """{(method, path): [(block type, status, reason), ...]} of an .inc.

    A method's status blocks are those between its ``rest_method`` and the
    next one.
    """
    methods = {}
    current = None
    block = None
    for line in text.splitlines():
        match = _METHOD_RE.match(line)
        if match:
            current = methods.setdefault(match.groups(), [])
            block = None
            continue
        match = _STATUS_RE.match(line)
        if match:
            block = match.group(1)
            continue
        if block is None or current is None:
            continue
        match = _STATUS_ITEM_RE.match(line)
        if match:
            current.append((block, int(match.group(1)), match.group(2)))
        elif line.strip():
            block = None
    return methods


def sample_files():
    for dirpath, _dirs, files in os.walk(SAMPLES):
        for name in files:
            path = os.path.join(dirpath, name)
            yield os.path.relpath(path, SAMPLES), path


class TestImagesReference(test_base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.documented = parse_inc(read(IMAGES_INC))
        conf = deploy.load_conf(directory='/nonexistent')
        self.routes = set(router.build_router(conf).routes())

    def test_parser_finds_the_documented_methods(self):
        self.assertGreaterEqual(len(self.documented), 2)
        for statuses in self.documented.values():
            self.assertTrue(statuses)

    def test_every_route_is_documented(self):
        self.assertTrue(self.routes)
        for path, method in self.routes:
            self.assertIn((method, path), self.documented,
                          f'{method} {path} has no rest_method in images.inc')

    def test_every_documented_method_is_routed(self):
        routed = {(method, path) for path, method in self.routes}
        self.assertEqual(routed, set(self.documented))

    def test_every_status_of_a_route_is_documented(self):
        for path, method in self.routes:
            statuses = self.documented[(method, path)]
            success = {code for kind, code, _ in statuses
                       if kind == 'success'}
            error = {code for kind, code, _ in statuses if kind == 'error'}
            self.assertEqual({204}, success, f'{method} {path}')
            self.assertEqual(ROUTED_STATUSES - {204}, error,
                             f'{method} {path}')

    def test_project_mismatch_is_documented_on_the_project_form(self):
        for path, method in self.routes:
            reasons = {(code, reason) for _, code, reason
                       in self.documented[(method, path)]}
            self.assertEqual('{project_id}' in path,
                             (400, 'project') in reasons, path)

    def test_status_reasons_exist_in_status_yaml(self):
        status_defs = yaml.safe_load(read(os.path.join(SOURCE,
                                                       'status.yaml')))
        for statuses in self.documented.values():
            for _kind, code, reason in statuses:
                self.assertIn(code, status_defs)
                self.assertIn(reason or 'default', status_defs[code],
                              f'{code}: {reason}')

    def test_every_documented_error_has_its_sample(self):
        documented = {(code, reason) for statuses in self.documented.values()
                      for kind, code, reason in statuses if kind == 'error'}
        self.assertEqual(set(CASE_SAMPLES), documented)
        included = set(re.findall(r'^\.\. literalinclude::\s+samples/images/'
                                  r'(\S+)', read(IMAGES_INC), re.MULTILINE))
        self.assertEqual(set(CASE_SAMPLES.values()), included)

    def test_included_samples_exist(self):
        for name in ('images.inc', 'versions.inc'):
            for target in re.findall(r'^\.\. literalinclude::\s+(\S+)',
                                     read(os.path.join(SOURCE, name)),
                                     re.MULTILINE):
                self.assertTrue(
                    os.path.isfile(os.path.join(SOURCE, target)), target)


class TestSamples(test_base.BaseTestCase):

    def test_samples_are_known_kinds(self):
        names = {name for name, _ in sample_files()}
        self.assertTrue(names)
        for name in names:
            self.assertTrue(
                name in AUTH_TOKEN_SAMPLES or name in VERSION_SAMPLES
                or _SAMPLE_CODE_RE.search(name), name)

    def test_fault_samples_are_compute_faults(self):
        checked = set()
        for name, path in sample_files():
            if name in AUTH_TOKEN_SAMPLES or name in VERSION_SAMPLES:
                continue
            status = int(_SAMPLE_CODE_RE.search(name).group(1))
            body = json.loads(read(path))
            self.assertIsInstance(body, dict, name)
            self.assertEqual(1, len(body), name)
            ((fault_name, fault),) = body.items()
            self.assertEqual(
                faults.FAULT_NAMES.get(status, faults.DEFAULT_FAULT_NAME),
                fault_name, name)
            self.assertEqual({'code', 'message'}, set(fault), name)
            self.assertEqual(status, fault['code'], name)
            self.assertIsInstance(fault['message'], str, name)
            self.assertTrue(fault['message'], name)
            self.assertNotIn('<', fault['message'], name)
            checked.add(status)
        # A Compute fault sample for every error the service renders itself.
        self.assertEqual(ROUTED_STATUSES - {204}, checked)

    def test_auth_token_sample_has_keystonemiddleware_shape(self):
        for name in AUTH_TOKEN_SAMPLES:
            body = json.loads(read(os.path.join(SAMPLES, name)))
            self.assertEqual({'error'}, set(body), name)
            self.assertEqual({'code', 'title', 'message'},
                             set(body['error']), name)
            self.assertEqual(401, body['error']['code'], name)

    def test_version_samples_are_what_the_service_serves(self):
        app = versions.VersionsMiddleware(None)
        for name, url in VERSION_SAMPLES.items():
            req = webob.Request.blank(url, base_url=SAMPLE_HOST)
            resp = req.get_response(app)
            self.assertEqual(200, resp.status_int, name)
            self.assertEqual(resp.json,
                             json.loads(read(os.path.join(SAMPLES, name))),
                             name)


def _version(value):
    return {'headers': {'OpenStack-API-Version': f'compute {value}'}}


# How the service is made to answer each fault sample: the request, and
# what the fake Glance answers (None: the request must not reach Glance).
FAULT_SCENARIOS = {
    'image-delete-400-version-resp.json': (_version('2.x'), None),
    'image-delete-400-project-resp.json': (
        {'project': base.OTHER_PROJECT}, None),
    'image-delete-401-image-resp.json': ({}, (401, b'{}', 0)),
    'image-delete-403-policy-resp.json': (
        {'identity': {'user_id': 'u-reader', 'project_id': base.PROJECT,
                      'roles': ['reader']}}, None),
    'image-delete-403-image-resp.json': ({}, (403, b'{}', 0)),
    'image-delete-404-image-resp.json': ({}, (404, b'{}', 0)),
    'image-delete-404-removed-resp.json': (_version('2.36'), None),
    'image-delete-404-route-resp.json': ({'path': '/v2.1/images/'}, None),
    'image-delete-405-resp.json': ({'method': 'PUT'}, None),
    'image-delete-406-resp.json': (_version('2.105'), None),
    'image-delete-409-resp.json': ({}, (409, b'{}', 0)),
    'image-delete-413-resp.json': ({'body': b'x' * 114689}, None),
    'image-delete-503-image-resp.json': ({}, (503, b'{}', 0)),
    # a policy file that is not valid YAML
    'image-delete-503-policy-resp.json': (
        {'policy': '"os_compute_api:images:delete": "role:admin\n'}, None),
}


class TestFaultSamplesAreWhatTheServiceAnswers(base.APITestCase):

    def test_every_fault_sample_has_a_scenario(self):
        images = {name.split('/', 1)[1] for name, _ in sample_files()
                  if name.startswith('images/')
                  and name not in FROM_AUTH_TOKEN}
        self.assertEqual(set(FAULT_SCENARIOS), images)

    def test_fault_samples_match_the_service(self):
        for name, (kwargs, glance) in FAULT_SCENARIOS.items():
            kwargs = dict(kwargs)
            self.glance.requests.clear()
            self.glance.default = glance or (204, b'', 0)
            project = kwargs.pop('project', None)
            path = kwargs.pop('path', None)
            policy_text = kwargs.pop('policy', '{}\n')
            self.write('policy.yaml', policy_text)
            if path is None:
                prefix = '/v2.1' if project is None else f'/v2.1/{project}'
                path = f'{prefix}/images/{SAMPLE_IMAGE}'
            resp = self.request(path, **kwargs)
            expected = json.loads(read(os.path.join(SAMPLES, 'images',
                                                    name)))
            self.assertEqual(expected, resp.json, name)
            if resp.status_int == 401:
                self.assertIn('WWW-Authenticate', resp.headers, name)
            if glance is None:
                self.assertEqual([], self.glance.requests, name)


# --------------------------------------------------------------------------
# README.rst: what it is and the two commands on the first screen; what it
# says of the environments and of the test command's last line is what the
# tools make and print.

README = os.path.join(REPO, 'README.rst')
SCREEN = 40   # lines


def readme_commands(text):
    """The commands of README's literal blocks (``::``), in order."""
    commands = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith('::') and not line.startswith('..'):
            for number, body in enumerate(lines[i + 1:], start=i + 2):
                if body and not body[0].isspace():
                    break
                if body.strip():
                    commands.append((number, body.strip()))
    return commands


def tool_venvs(*args):
    """The environments ``tools/bootstrap.sh ARGS --list`` names."""
    import subprocess
    out = subprocess.run(['bash', os.path.join(REPO, 'tools', 'bootstrap.sh'),
                          *args, '--list'], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return [line.rsplit('/', 1)[-1] for line in out.split()]


class TestReadme(test_base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.text = read(README)

    def test_two_commands_on_the_first_screen(self):
        commands = readme_commands(self.text)
        self.assertEqual(['tools/stack', 'tools/run-tests'],
                         [command for _, command in commands])
        for line, command in commands:
            self.assertLessEqual(line, SCREEN, command)

    def test_everything_else_is_a_link(self):
        # no section beyond the quick start and the links into doc/
        titles = re.findall(r'^(.+)\n=+\n', self.text, re.MULTILINE)
        self.assertEqual(['compute-api', 'Quick start', 'Documentation'],
                         titles)
        for target in re.findall(r'<(doc/source/[^>]+|benchmarks/[^>]+)>`_',
                                 self.text):
            self.assertTrue(os.path.isfile(os.path.join(REPO, target)),
                            target)

    def test_the_environments_are_what_the_tools_make(self):
        paragraph = re.search(r'``tools/stack`` makes .*?\n\n', self.text,
                              re.DOTALL).group(0)
        stack_part, tests_part = paragraph.split('``tools/run-tests`` adds')
        named = re.compile(r'``(\.venv[^`]*)``')
        self.assertEqual(tool_venvs('--stack'), named.findall(stack_part))
        docs = re.search(r'COMPUTE_API_DOCS_VENV:-\$top/(\.venv[-\w]*)',
                         read(os.path.join(REPO, 'tools', 'build-docs')))
        compat = re.search(r'"\$top/(\.venv-compat)/\$series"',
                           read(os.path.join(REPO, 'tools', 'compat')))
        self.assertEqual(
            [name for name in tool_venvs() if name not in
             tool_venvs('--stack')]
            + [docs.group(1), compat.group(1) + '/<series>'],
            named.findall(tests_part))

    def test_the_last_line_is_what_run_tests_prints(self):
        import subprocess
        import sys
        import tempfile
        stated = re.search(r'last line is ``(N passed, N failed)``,\s+'
                           r'followed by ``(, N skipped)`` when', self.text)
        self.assertIsNotNone(stated)
        without, skipped = (re.escape(group).replace('N', r'\d+')
                            for group in stated.groups())
        run_tests = read(os.path.join(REPO, 'tools', 'run-tests'))
        # the script's own last step: the sum of every stage's line
        (total,) = re.findall(r"<<'PY'\n(.*?)\nPY\n", run_tests, re.DOTALL)
        stages = [
            ('unit tests: 7 passed, 0 failed\n'
             'functional: 3 passed, 1 failed\n',
             '10 passed, 1 failed', f'^{without}$'),
            ('unit tests: 7 passed, 0 failed, 2 skipped\n'
             'docs: 5 passed, 0 failed\n',
             '12 passed, 0 failed, 2 skipped', f'^{without}{skipped}$'),
        ]
        for summary, expected, regex in stages:
            with tempfile.NamedTemporaryFile('w', suffix='.txt') as f:
                f.write(summary)
                f.flush()
                out = subprocess.run([sys.executable, '-c', total, f.name],
                                     capture_output=True, text=True,
                                     check=True).stdout
            last = out.splitlines()[-1]
            self.assertEqual(expected, last)
            self.assertRegex(last, regex)

    def test_no_test_counts(self):
        # they change with every change; the last line says them
        self.assertIsNone(re.search(r'\d+ (passed|failed|skipped)',
                                    self.text))

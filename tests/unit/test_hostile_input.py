"""Property-based tests with hypothesis: hostile input against the full
Paste app in process (Glance faked on loopback).

Properties, whatever the client sends:
* the answer is never a 500, and every error is a JSON Compute fault (every
  request here carries a confirmed identity, so auth_token's 401, whose
  body is keystonemiddleware's own, does not arise: test_auth covers it);
* every response carries the two (equal) request-id headers;
* Glance only ever receives ``DELETE /v2/images/<one encoded segment>``.
"""

import io
import re
import sys

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.unit import base
from tests.unit import fakes

GLANCE_PATH = re.compile(r'/v2/images/[0-9a-fA-F-]{36}')
UUID = re.compile(r'[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}')
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# C0 controls and DEL (a final line feed is what regular expressions
# ending in '$' let through).
controls = st.one_of(
    st.sampled_from(['\n', '\r\n', '\r', '\x00', '\t', '\x7f']),
    st.text(alphabet=st.characters(max_codepoint=31) | st.just('\x7f'),
            min_size=1, max_size=3))
segment = st.one_of(
    st.uuids().map(str),
    st.tuples(st.uuids().map(str), controls).map(''.join),
    st.tuples(controls, st.uuids().map(str)).map(''.join),
    st.text(min_size=0, max_size=80),
    st.sampled_from(['.', '..', '%2e%2e', '%2F', '?', '#', '%00', '\x00',
                     'images', 'v2.1', '%', '%%', '\r\n', ' ', '\u202e']),
    st.binary(max_size=60).map(lambda b: b.decode('latin-1')),
)
methods = st.sampled_from(['DELETE', 'GET', 'PUT', 'POST', 'PATCH', 'HEAD',
                           'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'X'])
# Version numbers on both sides of int()'s default 4,300-digit limit.
digits = st.one_of(st.integers(1, 12), st.integers(4290, 8000)).map(
    lambda n: '9' * n)
long_version = st.builds('{}.{}'.format, digits, digits)
header_value = st.one_of(
    long_version, long_version.map('compute {}'.format),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255),
            max_size=120),
    st.sampled_from(['compute 2.1', 'compute 2.35', 'compute 2.36',
                     'compute latest', 'compute 2.99999999999999999999',
                     'compute 9' * 50, 'compute', '', 'latest']))


def latin1(text):
    """What a WSGI server puts in PATH_INFO: bytes decoded as latin-1."""
    return text.encode('utf-8', 'surrogatepass').decode('latin-1')


class TestHostileInput(base.APITestCase):

    def call(self, method, path_info, headers=None, body=b''):
        environ = {
            'REQUEST_METHOD': method, 'SCRIPT_NAME': '',
            'PATH_INFO': path_info, 'QUERY_STRING': '',
            'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '80',
            'SERVER_PROTOCOL': 'HTTP/1.1', 'wsgi.url_scheme': 'http',
            'wsgi.input': io.BytesIO(body), 'wsgi.errors': sys.stderr,
            'wsgi.version': (1, 0), 'wsgi.multithread': False,
            'wsgi.multiprocess': False, 'wsgi.run_once': False,
            'CONTENT_LENGTH': str(len(body)),
            fakes.IDENTITY_KEY: base.MEMBER,
        }
        for name, value in (headers or {}).items():
            environ['HTTP_' + name.upper().replace('-', '_')] = value
        captured = {}

        def start_response(status, response_headers, exc_info=None):
            captured['status'] = int(status.split()[0])
            captured['headers'] = dict(response_headers)
        body = b''.join(self.app(environ, start_response))
        return captured['status'], captured['headers'], body

    def check(self, status, headers, body, method):
        self.assertNotEqual(500, status, body)
        self.assertLess(status, 600)
        rid = headers.get('x-openstack-request-id')
        self.assertRegex(rid or '', r'^req-[0-9a-f-]{36}$')
        self.assertEqual(rid, headers.get('x-compute-request-id'))
        if status >= 400 and method not in ('HEAD', 'OPTIONS'):
            self.assertTrue(headers['Content-Type'].startswith(
                'application/json'), (status, headers))
            self.assertNotIn(b'<', body)
            self.assertNotIn(b'Traceback', body)
        for sent in self.glance.requests:
            self.assertEqual('DELETE', sent.method)
            self.assertTrue(GLANCE_PATH.fullmatch(sent.path), sent.path)

    @SETTINGS
    @given(image_id=segment, method=methods)
    def test_image_ids_and_methods(self, image_id, method):
        status, headers, body = self.call(
            method, latin1(f'/v2.1/images/{image_id}'))
        self.check(status, headers, body, method)
        if status == 204:
            self.assertTrue(UUID.fullmatch(image_id), repr(image_id))

    @SETTINGS
    @given(project=segment, image_id=segment)
    def test_project_segments(self, project, image_id):
        status, headers, body = self.call(
            'DELETE', latin1(f'/v2.1/{project}/images/{image_id}'))
        self.check(status, headers, body, 'DELETE')
        if status == 204:
            self.assertEqual(base.PROJECT, project)
            self.assertTrue(UUID.fullmatch(image_id), repr(image_id))

    @SETTINGS
    @given(image_id=st.uuids().map(str), control=controls,
           place=st.sampled_from(['{p}/images/{i}{c}', '{p}{c}/images/{i}',
                                  '{p}/images/{c}{i}', '/images/{i}{c}']))
    def test_control_characters_are_404(self, image_id, control, place):
        path = '/v2.1' + place.format(p='/' + base.PROJECT, i=image_id,
                                      c=control)
        status, headers, body = self.call('DELETE', latin1(path))
        self.check(status, headers, body, 'DELETE')
        self.assertEqual(404, status, repr(path))
        self.assertEqual([], self.glance.requests)

    @SETTINGS
    @given(path=st.binary(max_size=120))
    def test_arbitrary_paths(self, path):
        status, headers, body = self.call(
            'DELETE', '/' + path.decode('latin-1'))
        self.check(status, headers, body, 'DELETE')

    @SETTINGS
    @given(standard=header_value, legacy=header_value,
           request_id=header_value,
           content_type=header_value, body=st.binary(max_size=300))
    def test_headers_and_bodies(self, standard, legacy, request_id,
                                content_type, body):
        status, headers, resp_body = self.call(
            'DELETE', '/v2.1/images/6f1c3a6e-4a59-4b8e-9a43-0c6f1f9b1a11',
            headers={'OpenStack-API-Version': standard,
                     'X-OpenStack-Nova-API-Version': legacy,
                     'X-OpenStack-Request-ID': request_id,
                     'Content-Type': content_type}, body=body)
        self.check(status, headers, resp_body, 'DELETE')
        self.assertIn(status, (204, 400, 404, 406))

    def test_header_flood(self):
        headers = {f'X-Junk-{i}': 'x' * 100 for i in range(500)}
        headers['X-Big'] = 'y' * 65536
        status, headers_out, body = self.call(
            'DELETE', '/v2.1/images/6f1c3a6e-4a59-4b8e-9a43-0c6f1f9b1a11',
            headers=headers)
        self.check(status, headers_out, body, 'DELETE')
        self.assertEqual(204, status)

"""Delete Image on the real stack: every row of the contract it can produce.

Row numbers refer to the order-of-evaluation table in the behaviour
contract (docs: ``api-ref``; the spec's "Order of evaluation").
"""

import json
import socket
import uuid

from tests import stack
from tests.functional import base

STANDARD = 'OpenStack-API-Version'
LEGACY = 'X-OpenStack-Nova-API-Version'
RULE = 'os_compute_api:images:delete'


class TestDeleteSucceeds(base.FunctionalTestCase):
    """Row 10, Glance 204: the image is gone from Glance."""

    def test_own_active_image_project_less_url(self):
        image_id = self.stack.create_image(data=b'x' * 1024)
        resp = self.delete(image_id)
        self.assertDeleted(resp, image_id)
        self.assertEqual('compute 2.1', resp.headers[STANDARD])
        self.assertEqual('2.1', resp.headers[LEGACY])
        self.assertIn(STANDARD, resp.headers['Vary'])

    def test_own_image_project_url(self):
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id, project=True), image_id)

    def test_queued_image(self):
        image_id = self.stack.create_image()
        self.assertEqual('queued',
                         self.stack.glance_image(image_id)['status'])
        self.assertDeleted(self.delete(image_id), image_id)

    def test_project_admin_deletes_another_projects_image(self):
        image_id = self.stack.create_image(visibility='private')
        self.assertDeleted(self.delete(image_id, user='admin'), image_id)

    def test_admin_of_the_owning_project(self):
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id, user='demo-admin'),
                           image_id)

    def test_highest_version_with_the_image_api(self):
        image_id = self.stack.create_image()
        resp = self.delete(image_id, headers={STANDARD: 'compute 2.35'})
        self.assertDeleted(resp, image_id)
        self.assertEqual('compute 2.35', resp.headers[STANDARD])

    def test_legacy_header(self):
        image_id = self.stack.create_image()
        resp = self.delete(image_id, headers={LEGACY: '2.20'})
        self.assertDeleted(resp, image_id)
        self.assertEqual('2.20', resp.headers[LEGACY])

    def test_second_delete_is_404(self):
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id), image_id)
        self.assertFault(self.delete(image_id), 404, 'itemNotFound')

    def test_tempest_style_request_with_json_body(self):
        image_id = self.stack.create_image()
        resp = self.delete(image_id, data=b'{}', headers={
            'Content-Type': 'application/json', 'Accept': 'application/json'})
        self.assertDeleted(resp, image_id)


class TestGlanceRefuses(base.FunctionalTestCase):
    """Row 10: Glance's 403 and 404, the image left in place."""

    def test_protected_image_is_403_even_for_admin(self):
        image_id = self.stack.create_image(protected=True)
        for user in ('demo-member', 'demo-admin', 'admin'):
            self.assertFault(self.delete(image_id, user=user), 403,
                             'forbidden')
        self.assertImageKept(image_id)

    def test_other_projects_private_image_is_404(self):
        image_id = self.stack.create_image(visibility='private')
        self.assertFault(self.delete(image_id, user='alt-member'), 404,
                         'itemNotFound')
        self.assertImageKept(image_id)

    def test_other_projects_public_image_is_403(self):
        image_id = self.stack.create_image(user_name='admin',
                                           visibility='public')
        self.assertFault(self.delete(image_id, user='alt-member'), 403,
                         'forbidden')
        self.assertImageKept(image_id)

    def test_other_projects_community_image_is_403(self):
        image_id = self.stack.create_image(visibility='community')
        self.assertFault(self.delete(image_id, user='alt-member'), 403,
                         'forbidden')
        self.assertImageKept(image_id)

    def test_unknown_and_malformed_ids_are_404(self):
        keep = self.stack.create_image()
        for image_id in (str(uuid.uuid4()), 'not-a-uuid', '-1', 'x' * 300,
                         keep + '?junk', keep + '#frag', keep + '/x',
                         '%2e%2e', keep.replace('-', '')):
            self.assertFault(self.delete(image_id), 404, 'itemNotFound')
        self.assertImageKept(keep)

    def test_dot_segments_are_404(self):
        keep = self.stack.create_image()
        for raw in ('/v2.1/images/..', '/v2.1/images/.',
                    '/v2.1/images/%2E%2E', f'/v2.1/images/{keep}/..'):
            status, body = self.raw_call(raw)
            self.assertEqual(404, status, raw)
            self.assertIn(b'itemNotFound', body)
        self.assertImageKept(keep)


class TestPolicy(base.FunctionalTestCase):
    """Row 9: the policy rule, checked before Glance is called."""

    def test_reader_and_roleless_users_are_403(self):
        image_id = self.stack.create_image()
        for user in ('demo-reader', 'demo-norole'):
            self.assertFault(self.delete(image_id, user=user), 403,
                             'forbidden', RULE)
        self.assertImageKept(image_id)

    def test_other_projects_reader_is_403_by_policy(self):
        image_id = self.stack.create_image(visibility='private')
        resp = self.delete(image_id, user='alt-reader')
        self.assertFault(resp, 403, 'forbidden', RULE)
        self.assertImageKept(image_id)

    def test_client_sent_identity_headers_are_not_trusted(self):
        image_id = self.stack.create_image()
        reader = self.stack.user('demo-reader')
        resp = self.delete(image_id, user='demo-reader', headers={
            'X-Roles': 'admin,member', 'X-Role': 'admin',
            'X-Project-Id': self.state['projects']['admin'],
            'X-User-Id': 'someone-else', 'X-Identity-Status': 'Confirmed',
            'X-Is-Admin-Project': 'True'})
        self.assertFault(resp, 403, 'forbidden', RULE)
        self.assertImageKept(image_id)
        self.assertTrue(reader['password'])

    def test_identity_headers_without_a_token_are_401(self):
        image_id = self.stack.create_image()
        resp = self.delete(image_id, user=None, headers={
            'X-Identity-Status': 'Confirmed', 'X-User-Id': 'x',
            'X-Project-Id': self.project_id('demo-member'),
            'X-Roles': 'admin'})
        self.assertEqual(401, resp.status_code)
        self.assertImageKept(image_id)


class TestRequestChecks(base.FunctionalTestCase):
    """Rows 5 to 8: routing, microversions, the URL's project."""

    def test_url_project_mismatch_is_400(self):
        image_id = self.stack.create_image()
        other = self.state['projects']['alt']
        resp = self.delete(image_id, project=other)
        self.assertFault(resp, 400, 'badRequest', other)
        self.assertIn(self.project_id('demo-member'),
                      resp.json()['badRequest']['message'])
        self.assertImageKept(image_id)

    def test_malformed_microversion_is_400(self):
        image_id = self.stack.create_image()
        for headers in ({STANDARD: 'compute 2.x'}, {STANDARD: 'compute 2'},
                        {LEGACY: 'abc'}, {STANDARD: 'compute 02.1'}):
            self.assertFault(self.delete(image_id, headers=headers), 400,
                             'badRequest')
        self.assertImageKept(image_id)

    def test_out_of_range_microversion_is_406(self):
        image_id = self.stack.create_image()
        for value in ('2.0', '2.105', '3.0'):
            headers = {STANDARD: f'compute {value}'}
            resp = self.delete(image_id, headers=headers)
            self.assertFault(resp, 406, 'computeFault')
        self.assertImageKept(image_id)

    def test_overlong_microversion_numbers_are_406_with_a_short_message(
            self):
        # 4,301 digits is one more than int() converts by default.
        image_id = self.stack.create_image()
        for digits in (4300, 4301):
            number = '9' * digits
            for headers in ({STANDARD: f'compute 2.{number}'},
                            {LEGACY: f'2.{number}'},
                            {STANDARD: f'compute {number}.1'}):
                resp = self.delete(image_id, headers=headers)
                self.assertFault(resp, 406, 'computeFault')
                message = resp.json()['computeFault']['message']
                self.assertLess(len(message), 200)
        self.assertImageKept(image_id)

    def test_control_characters_in_the_path_are_404(self):
        image_id = self.stack.create_image()
        project = self.project_id('demo-member')
        for char in ('%0A', '%0D%0A', '%0D', '%00', '%09', '%7F'):
            for raw in (f'/v2.1/images/{image_id}{char}',
                        f'/v2.1/{project}/images/{image_id}{char}',
                        f'/v2.1/{project}{char}/images/{image_id}',
                        f'/v2.1/images/{char}{image_id}'):
                status, body = self.raw_call(raw)
                self.assertEqual(404, status, raw)
                fault = json.loads(body)['itemNotFound']
                self.assertEqual(404, fault['code'])
        self.assertImageKept(image_id)

    def test_image_api_gone_at_2_36_and_latest(self):
        image_id = self.stack.create_image()
        for value in ('2.36', '2.104', 'latest'):
            headers = {STANDARD: f'compute {value}'}
            resp = self.delete(image_id, headers=headers)
            self.assertFault(resp, 404, 'itemNotFound')
        self.assertImageKept(image_id)

    def test_blank_id_and_trailing_slash_are_404(self):
        image_id = self.stack.create_image()
        for path in ('/v2.1/images/', f'/v2.1/images/{image_id}/',
                     f'/v2.1/{self.project_id("demo-member")}/images/',
                     '/v2.1/imagez/' + image_id):
            self.assertFault(self.call(path), 404, 'itemNotFound')
        self.assertImageKept(image_id)

    def test_other_methods_are_405_with_allow(self):
        image_id = self.stack.create_image()
        for method in ('PUT', 'POST', 'PATCH', 'GET'):
            for project in (False, True):
                resp = self.call(self._path(image_id, project),
                                 method=method, data=b'{}',
                                 headers={'Content-Type': 'application/json'})
                self.assertFault(resp, 405, 'badMethod')
                self.assertEqual('DELETE', resp.headers['Allow'])
        self.assertImageKept(image_id)

    def _path(self, image_id, project):
        prefix = '/v2.1'
        if project:
            prefix += '/' + self.project_id('demo-member')
        return f'{prefix}/images/{image_id}'

    def test_oversized_body_is_413(self):
        image_id = self.stack.create_image()
        # tempest's clients accept JSON only: webob then renders its own
        # errors as JSON, which must become a Compute fault all the same
        for accept in ('*/*', 'application/json'):
            resp = self.delete(image_id, data=b'x' * (114688 + 1),
                               headers={'Accept': accept})
            self.assertFault(resp, 413, 'overLimit')
        self.assertImageKept(image_id)

    def test_oversized_chunked_body_is_413(self):
        # no Content-Length: the body is read up to the limit, then refused
        image_id = self.stack.create_image()

        def chunks(size):
            for _ in range(size // 10000):
                yield b'x' * 10000
        for user in ('demo-member', None):
            resp = self.delete(image_id, data=chunks(200000), user=user)
            self.assertFault(resp, 413, 'overLimit')
        self.assertImageKept(image_id)
        # a chunked body within the limit is accepted
        resp = self.delete(image_id, data=chunks(100000))
        self.assertDeleted(resp, image_id)

    def send_chunked(self, url, image_id, body):
        """A DELETE with a raw chunked ``body``, the sending side then
        closed; returns the status line and the body of the answer."""
        token = self.stack.token('demo-member')
        port = int(url.rsplit(':', 1)[1])
        with socket.create_connection((stack.HOST, port), 30) as sock:
            sock.sendall(f'DELETE /v2.1/images/{image_id} HTTP/1.1\r\n'
                         f'Host: {stack.HOST}\r\nX-Auth-Token: {token}\r\n'
                         'Transfer-Encoding: chunked\r\n\r\n'.encode()
                         + body)
            sock.shutdown(socket.SHUT_WR)
            answer = b''
            while data := sock.recv(65536):
                answer += data
        head, _, payload = answer.partition(b'\r\n\r\n')
        return head.split(b'\r\n')[0].decode(), payload

    def test_unreadable_chunked_body_is_400_under_both_servers(self):
        gunicorn = self.stack.start_compute_api(server='gunicorn')
        cut_short = b'5\r\nab'
        bad_size = b'zz\r\nxx\r\n0\r\n\r\n'
        # uwsgi (the stack's) reads a chunk size that is no number as the
        # last chunk: only a body cut short is an error there
        for url, bodies in ((self.state['compute_url'], [cut_short]),
                            (gunicorn['url'], [cut_short, bad_size])):
            image_id = self.stack.create_image()
            for body in bodies:
                status, payload = self.send_chunked(url, image_id, body)
                self.assertEqual('HTTP/1.1 400 Bad Request', status,
                                 (url, body, payload))
                self.assertEqual(
                    400, json.loads(payload)['badRequest']['code'])
            self.assertImageKept(image_id)


class TestAuthentication(base.FunctionalTestCase):
    """Rows 3 and 4: keystonemiddleware's auth_token."""

    def assert401(self, resp):
        self.assertEqual(401, resp.status_code, resp.text)
        self.assertIn('Keystone uri=', resp.headers['WWW-Authenticate'])
        self.assertIn(self.state['keystone_url'].rsplit('/', 1)[0],
                      resp.headers['WWW-Authenticate'])
        self.assertTrue(resp.headers['Content-Type'].startswith(
            'application/json'))

    def test_no_token_is_401(self):
        image_id = self.stack.create_image()
        self.assert401(self.delete(image_id, user=None))
        self.assertImageKept(image_id)

    def test_garbage_token_is_401(self):
        image_id = self.stack.create_image()
        for token in ('garbage', 'gAAAAAB' + 'x' * 180, 'x' * 8000):
            self.assert401(self.delete(image_id, token=token))
        self.assertImageKept(image_id)

    def test_revoked_token_is_401(self):
        # A token no service has validated yet: auth_token caches validated
        # tokens (300 s by default), so a revocation is only seen once the
        # cached entry expires.
        image_id = self.stack.create_image()
        admin = self.stack.session('admin')
        token = stack.get_session(self.state, 'demo-member').get_token()
        keystone = self.state['keystone_url']
        revoked = admin.delete(f'{keystone}/auth/tokens',
                               headers={'X-Subject-Token': token})
        self.assertEqual(204, revoked.status_code)
        self.assert401(self.delete(image_id, token=token))
        self.assertImageKept(image_id)


class TestUnauthenticatedDocuments(base.FunctionalTestCase):

    def test_version_documents_without_token(self):
        root = self.call('/', method='GET', user=None)
        self.assertEqual(200, root.status_code)
        self.assertEqual(['v2.1'],
                         [v['id'] for v in root.json()['versions']])
        for path in ('/v2.1', '/v2.1/'):
            doc = self.call(path, method='GET', user=None).json()['version']
            self.assertEqual(('2.1', '2.104'),
                             (doc['min_version'], doc['version']))

    def test_healthcheck_without_token(self):
        self.assertEqual(200, self.call('/healthcheck', method='GET',
                                        user=None).status_code)

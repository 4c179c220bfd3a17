"""Base class of the functional tests: the real stack, called over HTTP.

Every test talks to compute-api under gunicorn on 127.0.0.1, in front of a
real Keystone and a real Glance (see ``tests/stack/``). After an error the
tests check in Glance that the image is still there; after a 204, that it is
gone.
"""

import http.client
import re
from urllib import parse

import requests
import testtools

from tests.functional import stack_fixture

REQ_ID = re.compile(r'^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-'
                    r'[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
TIMEOUT = 60


class FunctionalTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.stack = self.useFixture(stack_fixture.StackFixture())
        self.state = self.stack.state
        self.url = self.stack.compute_url

    def project_id(self, user):
        return self.state['projects'][self.stack.user(user)['project_name']]

    def call(self, path, method='DELETE', user='demo-member', headers=None,
             data=None, url=None, token=None):
        """One request to compute-api; ``user=None`` sends no token."""
        headers = dict(headers or {})
        if token is not None:
            headers['X-Auth-Token'] = token
        elif user is not None:
            headers['X-Auth-Token'] = self.stack.token(user)
        resp = requests.request(method, (url or self.url) + path,
                                headers=headers, data=data, timeout=TIMEOUT)
        self.assertRequestIds(resp)
        return resp

    def raw_call(self, raw_path, user='demo-member', method='DELETE'):
        """A request whose path is sent exactly as given (no normalising)."""
        host = parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(host.hostname, host.port,
                                          timeout=TIMEOUT)
        self.addCleanup(conn.close)
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        conn.putheader('X-Auth-Token', self.stack.token(user))
        conn.putheader('Content-Length', '0')
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        self.assertRegex(resp.getheader('x-openstack-request-id'), REQ_ID)
        return resp.status, body

    def delete(self, image_id, user='demo-member', project=False, **kwargs):
        """DELETE an image; ``project=True`` uses the project URL form."""
        prefix = '/v2.1'
        if project is True:
            prefix += '/' + self.project_id(user)
        elif project:
            prefix += '/' + project
        quoted = parse.quote(image_id, safe='')
        return self.call(f'{prefix}/images/{quoted}', user=user, **kwargs)

    def assertRequestIds(self, resp):
        rid = resp.headers.get('x-openstack-request-id', '')
        self.assertRegex(rid, REQ_ID)
        self.assertEqual(rid, resp.headers.get('x-compute-request-id'))

    def assertFault(self, resp, status, name, contains=None):
        self.assertEqual(status, resp.status_code, resp.text)
        self.assertTrue(resp.headers['Content-Type'].startswith(
            'application/json'), resp.headers['Content-Type'])
        body = resp.json()
        self.assertEqual([name], list(body))
        self.assertEqual(status, body[name]['code'])
        self.assertNotIn('<', body[name]['message'])
        self.assertNotIn('Traceback', body[name]['message'])
        if contains:
            self.assertIn(contains, body[name]['message'])

    def assertDeleted(self, resp, image_id):
        self.assertEqual(204, resp.status_code, resp.text)
        self.assertEqual(b'', resp.content)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'),
                          f'image {image_id} is still in Glance')

    def assertImageKept(self, image_id):
        image = self.stack.glance_image(image_id, 'admin')
        self.assertIsNotNone(image, f'image {image_id} was deleted')
        self.assertNotEqual('deleted', image['status'])

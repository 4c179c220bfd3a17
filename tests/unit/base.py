"""Unit-test base: the real Paste pipeline in process, Glance faked on
loopback, auth_token replaced by a double that sets its headers."""

import os
from urllib import parse
import uuid

import fixtures
from oslotest import base
import webob

from compute_api import deploy
from tests.unit import fakes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PASTE = os.path.join(REPO, 'etc', 'compute_api', 'api-paste.ini')
AUTHTOKEN = 'compute_api.middleware.factories:authtoken'
PROJECT = 'c0ffee0000000000000000000000c0de'
OTHER_PROJECT = 'a1100000000000000000000000000a11'

MEMBER = {'user_id': 'u-member', 'project_id': PROJECT,
          'roles': ['member', 'reader']}


def unit_paste_ini():
    """The production pipeline, auth_token swapped for the test double."""
    with open(PASTE) as f:
        text = f.read()
    assert AUTHTOKEN in text
    return text.replace(AUTHTOKEN, 'tests.unit.fakes:fake_auth_factory')


class APITestCase(base.BaseTestCase):
    """Builds the application the way the WSGI entry point does."""

    conf_text = ''

    def setUp(self):
        super().setUp()
        self.glance = fakes.FakeGlance()
        self.addCleanup(self.glance.stop)
        self.config_dir = self.useFixture(fixtures.TempDir()).path
        self.write('api-paste.ini', unit_paste_ini())
        self.write('policy.yaml', '{}\n')
        self.write(deploy.CONFIG_FILE, self.base_conf() + self.conf_text)
        self.conf = deploy.load_conf(directory=self.config_dir)
        self.app = deploy.loadapp(self.conf)

    def base_conf(self):
        return (
            '[glance]\n'
            f'endpoint_override = {self.glance.url}\n'
            'connect_retry_delay = 0.01\n'
            'status_code_retry_delay = 0.01\n'
            'timeout = 2\n'
            '[oslo_policy]\n'
            'policy_file = policy.yaml\n'
            '[keystone_authtoken]\n'
            f'www_authenticate_uri = {fakes.KEYSTONE}\n')

    def write(self, name, text):
        path = os.path.join(self.config_dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def request(self, path, method='DELETE', identity=MEMBER, headers=None,
                body=None):
        req = webob.Request.blank(path, method=method, headers=headers)
        if body is not None:
            req.body = body
        if identity is not None:
            req.environ[fakes.IDENTITY_KEY] = identity
        return req.get_response(self.app)

    def delete_image(self, image_id=None, project=None, **kwargs):
        """DELETE an image; the id is sent percent-encoded, as clients do."""
        image_id = parse.quote(image_id or str(uuid.uuid4()), safe='')
        prefix = '/v2.1' if project is None else f'/v2.1/{project}'
        return self.request(f'{prefix}/images/{image_id}', **kwargs)

    def assertFault(self, resp, status, name, message_contains=None):
        self.assertEqual(status, resp.status_int, resp.body)
        self.assertEqual('application/json', resp.content_type)
        self.assertEqual([name], list(resp.json))
        fault = resp.json[name]
        self.assertEqual(status, fault['code'])
        self.assertIsInstance(fault['message'], str)
        self.assertNotIn('<', fault['message'])
        if message_contains:
            self.assertIn(message_contains, fault['message'])

    def assertGlanceNotCalled(self):
        self.assertEqual([], self.glance.requests)

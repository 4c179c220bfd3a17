"""Real clients, unchanged, against the running service.

tempest's compute ImagesClient and openstacksdk both find compute-api
through the Keystone catalog (service type ``compute``) and must work as
they do against Nova.
"""

import fixtures
import openstack
from tempest.lib import auth
from tempest.lib import exceptions as tempest_exc
from tempest.lib.services.compute import images_client

from tests.functional import base


class TestTempestImagesClient(base.FunctionalTestCase):

    def client(self, user='demo-member'):
        info = self.stack.user(user)
        creds = auth.KeystoneV3Credentials(
            username=user, password=info['password'],
            project_name=info['project_name'], user_domain_name='Default',
            project_domain_name='Default')
        provider = auth.KeystoneV3AuthProvider(creds,
                                               self.state['keystone_url'])
        return images_client.ImagesClient(provider, 'compute',
                                          self.state['region'])

    def test_delete_image_passes_the_response_schema(self):
        image_id = self.stack.create_image()
        body = self.client().delete_image(image_id)
        self.assertEqual(204, body.response.status)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'))

    def test_delete_image_at_a_microversion(self):
        # what tempest's APIMicroversionFixture does
        self.useFixture(fixtures.MonkeyPatch(
            'tempest.lib.services.compute.base_compute_client.'
            'COMPUTE_MICROVERSION', '2.35'))
        image_id = self.stack.create_image()
        # tempest checks the response echoes the requested version
        self.client().delete_image(image_id)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'))

    def test_invalid_ids_are_not_found(self):
        # tempest's negative image tests: blank, invalid, non-hex, negative,
        # over-long and unknown ids are all NotFound.
        keep = self.stack.create_image()
        client = self.client()
        for image_id in ('', '!@#$%^&*()', 'e' * 35 + 'g', '-1', 'a' * 37,
                         '11111111-2222-3333-4444-555555555555'):
            self.assertRaises(tempest_exc.NotFound, client.delete_image,
                              image_id)
        self.assertImageKept(keep)

    def test_reader_is_forbidden(self):
        image_id = self.stack.create_image()
        self.assertRaises(tempest_exc.Forbidden,
                          self.client('demo-reader').delete_image, image_id)
        self.assertImageKept(image_id)


class TestOpenStackSDK(base.FunctionalTestCase):

    def connect(self, user='demo-member'):
        info = self.stack.user(user)
        conn = openstack.connect(
            auth_url=self.state['keystone_url'], username=user,
            password=info['password'], project_name=info['project_name'],
            user_domain_name='Default', project_domain_name='Default',
            region_name=self.state['region'])
        self.addCleanup(conn.close)
        return conn

    def test_compute_delete_image(self):
        image_id = self.stack.create_image(data=b'sdk' * 100)
        conn = self.connect()
        self.assertTrue(conn.compute.get_endpoint().endswith('/v2.1'))
        conn.compute.delete_image(image_id)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'))

    def test_missing_image(self):
        conn = self.connect()
        missing = '11111111-2222-3333-4444-555555555555'
        self.assertRaises(openstack.exceptions.NotFoundException,
                          conn.compute.delete_image, missing,
                          ignore_missing=False)
        self.assertIsNone(conn.compute.delete_image(missing))

    def test_forbidden(self):
        image_id = self.stack.create_image()
        conn = self.connect('demo-reader')
        self.assertRaises(openstack.exceptions.ForbiddenException,
                          conn.compute.delete_image, image_id)
        self.assertImageKept(image_id)

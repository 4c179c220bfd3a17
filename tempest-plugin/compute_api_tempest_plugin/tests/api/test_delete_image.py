# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Delete Image: every answer of the contract a client can bring about."""

import uuid

from tempest import config
from tempest.common import credentials_factory
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc
from tempest.lib.common import api_microversion_fixture

from compute_api_tempest_plugin.tests import base

CONF = config.CONF


def _next_minor(version):
    major, minor = version.split('.')
    return f'{major}.{int(minor) + 1}'


class ImagesDeleteTest(base.BaseImageDeleteTest):
    """A member of the image's project deletes it: 204, gone in Glance."""

    @decorators.idempotent_id('6c41ed93-d759-4e7c-9466-851a3253392e')
    def test_delete_own_image(self):
        image_id = self.create_image()
        body = self.images_client.delete_image(image_id)
        self.assertEqual(204, body.response.status)
        self.assertImageGone(image_id)

    @decorators.idempotent_id('370f9f47-8f5e-465b-9251-76367a8463ad')
    def test_delete_own_image_project_url(self):
        # both URL forms, whichever the catalog's endpoint has
        project_id = self.os_primary.credentials.project_id
        for prefix in (f'/{project_id}', ''):
            image_id = self.create_image()
            resp, body = self.request(f'{prefix}/images/{image_id}')
            self.assertEqual(204, resp.status, body)
            self.assertFalse(body)
            self.assertImageGone(image_id)

    @decorators.idempotent_id('49eaefaf-e4e8-4cf8-87ed-b2249697affb')
    def test_delete_at_the_last_image_microversion(self):
        # 2.35 is the last microversion with the image proxy API; tempest's
        # client checks that the answer echoes the requested version.
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion='2.35'))
        image_id = self.create_image()
        body = self.images_client.delete_image(image_id)
        self.assertEqual(204, body.response.status)
        self.assertEqual('compute 2.35',
                         body.response[base.STANDARD_HEADER.lower()])
        self.assertImageGone(image_id)


class ImagesDeleteNegativeTest(base.BaseImageDeleteTest):
    """Refusals: the right status and fault, and the image is kept."""

    # project_reader: a user with the reader role in the primary user's
    # project; other_member: a member of another project (tempest's alt
    # persona may be any account, a reader too). No admin: pre-provisioned
    # accounts often have none (see ImagesDeleteOthersPublicImageTest).
    credentials = ['primary', 'project_reader', ['other_member', 'member']]

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.reader_client = cls.os_project_reader.compute_images_client
        cls.other_glance_client = cls.os_other_member.image_client_v2

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('edd5ca4e-926b-4d04-a331-2c1d2955770a')
    def test_delete_deleted_image(self):
        image_id = self.create_image()
        self.images_client.delete_image(image_id)
        self.assertImageGone(image_id)
        resp, body = self.request(f'/images/{image_id}')
        self.assertFault(resp, body, 404, 'itemNotFound')
        self.assertRaises(lib_exc.NotFound, self.images_client.delete_image,
                          image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('474bd9d0-56a5-4d13-937f-5eaf6556af5e')
    def test_delete_other_projects_private_image(self):
        self.skip_unless_plain_member()
        if (self.os_other_member.credentials.project_id
                == self.os_primary.credentials.project_id):
            raise self.skipException(
                'the accounts file gave a second member of the primary '
                'persona\'s project where a member of another project was '
                'asked for; give each project of the file one member '
                'account')
        image_id = self.create_image(self.other_glance_client)
        self.assertRaises(lib_exc.NotFound, self.images_client.delete_image,
                          image_id)
        self.assertImageKept(image_id, self.other_glance_client)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('783e864f-6e31-4b0d-923b-68d663af3a72')
    def test_delete_protected_image(self):
        image_id = self.create_image(protected=True)
        self.assertRaises(lib_exc.Forbidden, self.images_client.delete_image,
                          image_id)
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('e19cd04f-b033-4198-bd43-edb434adaa49')
    def test_delete_as_reader(self):
        # refused by compute-api's policy rule, before the Image service
        # (which would refuse a reader too) is called
        granting = self.roles_of(self.os_project_reader) & {'member', 'admin'}
        if granting:
            raise self.skipException(
                'the project_reader persona also holds '
                f'{", ".join(sorted(granting))} (from [auth] tempest_roles, '
                'which tempest gives every user it creates, or from the '
                'accounts file), so it is no reader; leave tempest_roles '
                'unset or without member and admin, or give the accounts '
                'file a user with the reader role only')
        if (self.os_project_reader.credentials.project_id
                != self.os_primary.credentials.project_id):
            raise self.skipException(
                'the project_reader persona is not in the primary persona\'s '
                'project; give the accounts file a reader account in each '
                'project that has a member account')
        image_id = self.create_image()
        resp, body = self.request(f'/images/{image_id}',
                                  client=self.reader_client)
        self.assertFault(resp, body, 403, 'forbidden',
                         contains=[base.POLICY_RULE])
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('bd260ca9-cf9b-439b-b7f7-d0cb99ca1a7e')
    def test_delete_with_another_project_in_the_url(self):
        image_id = self.create_image()
        own = self.os_primary.credentials.project_id
        other = uuid.uuid4().hex
        resp, body = self.request(f'/{other}/images/{image_id}')
        self.assertFault(resp, body, 400, 'badRequest',
                         contains=[own, other])
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('0dc7bbab-ad40-488a-9e71-a0e5d4b6e2ff')
    def test_delete_with_malformed_microversion(self):
        image_id = self.create_image()
        for headers in ({base.STANDARD_HEADER: 'compute 2.x'},
                        {base.STANDARD_HEADER: 'compute 02.1'},
                        {base.LEGACY_HEADER: 'abc'}):
            resp, body = self.request(f'/images/{image_id}',
                                      headers=headers)
            self.assertFault(resp, body, 400,
                             'badRequest' if self.standalone else None)
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('11c4de6f-779d-4810-a798-fffdfc9c6740')
    def test_delete_with_unsupported_microversion(self):
        image_id = self.create_image()
        too_high = _next_minor(self.max_microversion())
        for version in ('2.0', too_high, '3.0'):
            resp, body = self.request(
                f'/images/{image_id}',
                headers={base.STANDARD_HEADER: f'compute {version}'})
            self.assertFault(resp, body, 406,
                             'computeFault' if self.standalone else None)
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('9fb3a474-9f3d-4b98-a3a0-6ec206fcd51e')
    def test_delete_after_the_image_api_was_removed(self):
        # the image proxy API ends with 2.35
        image_id = self.create_image()
        for version in ('2.36', self.max_microversion(), 'latest'):
            resp, body = self.request(
                f'/images/{image_id}',
                headers={base.STANDARD_HEADER: f'compute {version}'})
            self.assertFault(resp, body, 404,
                             'itemNotFound' if self.standalone else None)
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('40fbaeaa-9575-4a79-aa86-3c10804a6d17')
    def test_other_methods_are_not_allowed(self):
        if not self.standalone:
            raise self.skipException(
                'in extension mode the host API answers other methods; set '
                '[compute_api] mode = standalone if compute-api serves the '
                'compute endpoint itself')
        image_id = self.create_image()
        project_id = self.os_primary.credentials.project_id
        for path in (f'/images/{image_id}',
                     f'/{project_id}/images/{image_id}'):
            for method in ('PUT', 'POST', 'PATCH', 'GET'):
                resp, body = self.request(path, method=method, body='{}')
                self.assertFault(resp, body, 405, 'badMethod')
                self.assertEqual('DELETE', resp['allow'])
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('58ab7733-10f1-4862-be0a-c95148d8e0e0')
    def test_smuggled_ids_are_not_found(self):
        # An id carrying an encoded "?", "#" or "/" or dot segments reaches
        # no other Image service URL: it is an unknown image.
        image_id = self.create_image()
        project_id = self.os_primary.credentials.project_id
        for suffix in ('%3Fjunk', '%23junk', '%2Fjunk', '%2F..', '%2F.'):
            for prefix in ('', f'/{project_id}'):
                resp, body = self.request(
                    f'{prefix}/images/{image_id}{suffix}')
                self.assertEqual(404, resp.status, suffix)
        # and none reaches the image through dot segments either
        for path in ('/images/%2E%2E', '/images/%2E',
                     f'/images/{image_id}%2F%2E%2E',
                     f'/images/junk%2F..%2F{image_id}',
                     f'/images/junk%2F%2E%2E%2F{image_id}',
                     f'/images/%2E%2E%2Fimages%2F{image_id}',
                     f'/{project_id}/images/junk%2F..%2F{image_id}'):
            resp, body = self.request(path)
            self.assertEqual(404, resp.status, path)
        for path in ('/images/..', '/images/.', f'/images/{image_id}/..',
                     f'/images/{image_id}/.'):
            status, body = self.request_verbatim(path)
            self.assertEqual(404, status, path)
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('586d8ad1-6e97-4222-8d4a-11186baeb70c')
    def test_delete_without_a_token(self):
        image_id = self.create_image()
        resp, body = self.request(f'/images/{image_id}', auth=False)
        self.assertEqual(401, resp.status, body)
        self.assertIn('Keystone uri=', resp['www-authenticate'])
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('c863e841-60da-4cdd-9c7b-b026a479b8c0')
    def test_delete_with_an_invalid_token(self):
        image_id = self.create_image()
        for token in ('not-a-token', 'gAAAAA' + 'x' * 180):
            resp, body = self.request(f'/images/{image_id}', token=token)
            self.assertEqual(401, resp.status, body)
            self.assertIn('Keystone uri=', resp['www-authenticate'])
        self.assertImageKept(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('811e943c-60e6-4084-8d93-6c4dadd67698')
    def test_delete_with_an_oversized_body(self):
        image_id = self.create_image()
        size = CONF.compute_api.max_request_body_size + 1
        resp, body = self.request(f'/images/{image_id}', body='x' * size)
        self.assertEqual(413, resp.status,
                         f'{body} (is [compute_api] max_request_body_size '
                         f'the deployment\'s limit?)')
        if self.standalone:
            self.assertFault(resp, body, 413, 'overLimit')
        self.assertImageKept(image_id)


class ImagesDeleteOthersPublicImageTest(base.BaseImageDeleteTest):
    """Another project's public image: 403, kept. Only an admin may make an
    image public, so this needs the admin persona."""

    credentials = ['primary', 'admin']

    @classmethod
    def skip_checks(cls):
        if not credentials_factory.is_admin_available(
                identity_version=CONF.identity.auth_version):
            raise cls.skipException(
                'an admin persona makes the public image: set [auth] '
                'admin_username and its password with dynamic credentials, '
                'or add an account with the admin role to the accounts file')
        super().skip_checks()

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.admin_glance_client = cls.os_admin.image_client_v2

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('1da6d22c-c9d2-45b3-85a9-34490199fd6d')
    def test_delete_other_projects_public_image(self):
        self.skip_unless_plain_member()
        image_id = self.create_image(self.admin_glance_client,
                                     visibility='public')
        resp, body = self.request(f'/images/{image_id}')
        self.assertFault(resp, body, 403, 'forbidden')
        self.assertImageKept(image_id, self.admin_glance_client)

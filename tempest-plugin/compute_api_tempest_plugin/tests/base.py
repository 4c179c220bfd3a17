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
"""Base class of the Delete Image tests.

The tests talk to the catalog's ``compute`` endpoint with tempest's
compute ``ImagesClient`` (and, where a status, header or fault name must be
seen exactly, with the same client's HTTP connection and token), and check
the outcome in the Image service with the image v2 client: after a refusal
the image is still there, after a 204 it is gone. Every image a test makes
is removed when the test ends, and tempest removes the dynamic projects and
users when the class ends.
"""

import json
from urllib import parse

from tempest import config
from tempest import test
from tempest.lib import exceptions as lib_exc
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
import urllib3

from compute_api_tempest_plugin import config as plugin_config

CONF = config.CONF

POLICY_RULE = 'os_compute_api:images:delete'
STANDARD_HEADER = 'OpenStack-API-Version'
LEGACY_HEADER = 'X-OpenStack-Nova-API-Version'


class BaseImageDeleteTest(test.BaseTestCase):
    """Delete Image through the catalog's compute endpoint."""

    credentials = ['primary']

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.service_available.glance:
            raise cls.skipException('the Image service is not available')

    @classmethod
    def setup_credentials(cls):
        try:
            super().setup_credentials()
        except lib_exc.InvalidCredentials as exc:
            # pre-provisioned accounts: none free that fits a persona
            raise cls.skipException(
                f'the accounts file has no free account for a persona '
                f'({exc}); give each of its projects a member and a reader '
                f'account, with about two such projects per tempest worker '
                f'(tempest run --concurrency)')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.images_client = cls.os_primary.compute_images_client
        cls.glance_client = cls.os_primary.image_client_v2

    @property
    def standalone(self):
        return CONF.compute_api.mode == plugin_config.STANDALONE

    # Images ---------------------------------------------------------------

    def create_image(self, glance_client=None, **kwargs):
        """Create an image (queued, private by default); it is removed when
        the test ends, whatever happened to it."""
        glance_client = glance_client or self.glance_client
        kwargs.setdefault('name', data_utils.rand_name(
            self.__class__.__name__ + '-image',
            prefix=CONF.resource_name_prefix))
        kwargs.setdefault('container_format', 'bare')
        kwargs.setdefault('disk_format', 'raw')
        kwargs.setdefault('visibility', 'private')
        image = glance_client.create_image(**kwargs)
        self.addCleanup(self._remove_image, glance_client, image['id'])
        return image['id']

    @staticmethod
    def _remove_image(glance_client, image_id):
        try:
            image = glance_client.show_image(image_id)
        except lib_exc.NotFound:
            return
        if image.get('protected'):
            glance_client.update_image(
                image_id, [{'replace': '/protected', 'value': False}])
        test_utils.call_and_ignore_notfound_exc(glance_client.delete_image,
                                                image_id)

    def assertImageGone(self, image_id, glance_client=None):
        self.assertRaises(lib_exc.NotFound,
                          (glance_client or self.glance_client).show_image,
                          image_id)

    def assertImageKept(self, image_id, glance_client=None):
        image = (glance_client or self.glance_client).show_image(image_id)
        self.assertNotEqual('deleted', image['status'])

    # Personas -------------------------------------------------------------

    @staticmethod
    def roles_of(manager):
        """The names of the roles in ``manager``'s token (those given by
        ``[auth] tempest_roles`` or the accounts file included)."""
        _, access = manager.auth_provider.auth_data
        return {role['name'] for role in access.get('roles', ())}

    def skip_unless_plain_member(self):
        """Skip when the primary persona is an admin: an admin may delete
        other projects' images, so their refusals cannot be seen."""
        if 'admin' in self.roles_of(self.os_primary):
            raise self.skipException(
                'the primary persona holds the admin role, which may delete '
                'other projects\' images; take admin out of [auth] '
                'tempest_roles (or give the accounts file\'s member accounts '
                'no admin role)')

    # Requests seen exactly ------------------------------------------------

    @staticmethod
    def compute_root(client):
        """The catalog's compute endpoint without the token's project id:
        catalogs register it either way (``.../v2.1`` or
        ``.../v2.1/<project id>``), and the tests name the project in a
        path themselves where they need it."""
        url = client.base_url.rstrip('/')
        project_id = client.auth_provider.credentials.project_id
        head, _, last = url.rpartition('/')
        return head if project_id and last == project_id else url

    def request(self, path, method='DELETE', client=None, headers=None,
                body=None, token=None, auth=True):
        """A request to ``<compute endpoint root><path>`` (see
        :meth:`compute_root`) with the client's token (or ``token``, or none
        with ``auth=False``); no error handling. Returns ``(response,
        body)``."""
        client = client or self.images_client
        all_headers = {'Content-Type': 'application/json',
                       'Accept': 'application/json'}
        if auth:
            all_headers['X-Auth-Token'] = token or client.token
        all_headers.update(headers or {})
        return client.raw_request(self.compute_root(client) + path, method,
                                  headers=all_headers, body=body)

    def max_microversion(self):
        """``[compute_api] max_microversion``, or else the ``version`` of the
        compute endpoint's own version document (``GET /v2.1/``)."""
        if CONF.compute_api.max_microversion not in (None, '', 'latest'):
            return CONF.compute_api.max_microversion
        _, body = self.request('/', 'GET')
        return json.loads(body)['version']['version']

    def request_verbatim(self, path, client=None):
        """A DELETE whose path is sent exactly as given: HTTP clients,
        tempest's included, remove ``.`` and ``..`` segments from a URL
        before sending it. Returns ``(status, body)``."""
        client = client or self.images_client
        root = self.compute_root(client)
        endpoint = parse.urlsplit(root)
        target = endpoint.path + path
        if (isinstance(client.http_obj, urllib3.ProxyManager)
                and endpoint.scheme == 'http'):
            # a plain-HTTP request through [service-clients] proxy_url
            # names the whole URL
            target = f'http://{endpoint.netloc}{target}'
        pool = client.http_obj.connection_from_url(root)
        response = pool.urlopen(
            'DELETE', target, assert_same_host=False,
            headers={'X-Auth-Token': client.token,
                     'Accept': 'application/json'},
            redirect=False, retries=False)
        return response.status, response.data

    def assertFault(self, response, body, status, name=None,
                    contains=()):
        """A JSON Compute fault: ``{name: {"code": status, "message"}}``.

        With ``name=None`` only the status and the JSON form are checked
        (an answer the host API owns in extension mode)."""
        self.assertEqual(status, response.status, body)
        self.assertTrue(
            response.get('content-type', '').startswith('application/json'),
            response.get('content-type'))
        fault = json.loads(body)
        if name is None:
            return
        self.assertEqual([name], list(fault), body)
        self.assertEqual(status, fault[name]['code'])
        message = fault[name]['message']
        self.assertNotIn('<', message)
        self.assertNotIn('Traceback', message)
        for text in contains:
            self.assertIn(text, message)

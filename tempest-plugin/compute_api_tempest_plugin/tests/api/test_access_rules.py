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
"""Application credentials whose access rules name the Compute API.

A token restricted to ``DELETE <compute path>/images/*`` deletes an image:
compute-api accepts it, and the Image service accepts it in the call that
compute-api makes on the caller's behalf (with compute-api's service token).
A token restricted to another call is refused, and the image is kept.
"""

from urllib import parse

from tempest import config
from tempest.lib import decorators
from tempest.lib.common.utils import data_utils

from compute_api_tempest_plugin.tests import base

CONF = config.CONF


class ApplicationCredentialAccessRulesTest(base.BaseImageDeleteTest):

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.app_creds_client = cls.os_primary.application_credentials_client
        cls.token_client = cls.os_primary.token_v3_client
        cls.access_rules_client = cls.os_primary.access_rules_client

    def access_rule(self, method):
        """An access rule for ``method`` on the images of the catalog's
        compute endpoint (its path without a project id, e.g.
        ``/v2.1/images/*``)."""
        path = parse.urlsplit(self.compute_root(self.images_client)).path
        return {'service': CONF.compute.catalog_type, 'method': method,
                'path': f'{path}/images/*'}

    def token_with_access_rules(self, rules):
        """A token of a new application credential of the primary user
        (deleted when the test ends) restricted to ``rules``."""
        user_id = self.os_primary.credentials.user_id
        cred = self.app_creds_client.create_application_credential(
            user_id,
            name=data_utils.rand_name(self.__class__.__name__,
                                      prefix=CONF.resource_name_prefix),
            access_rules=rules)['application_credential']
        # Keystone keeps a credential's access rules when the credential
        # goes; they are removed after it (cleanups run last in, first out)
        for rule in cred['access_rules']:
            self.addCleanup(self.access_rules_client.delete_access_rule,
                            user_id, rule['id'])
        self.addCleanup(
            self.app_creds_client.delete_application_credential,
            user_id, cred['id'])
        return self.token_client.get_token(app_cred_id=cred['id'],
                                           app_cred_secret=cred['secret'])

    @decorators.idempotent_id('884949b0-dde2-45e8-b109-7c655710a06c')
    def test_access_rule_allowing_the_delete(self):
        token = self.token_with_access_rules([self.access_rule('DELETE')])
        image_id = self.create_image()
        resp, body = self.request(f'/images/{image_id}', token=token)
        self.assertEqual(204, resp.status, body)
        self.assertImageGone(image_id)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('9519b86c-de3b-4cc3-b9ee-4a2686eff092')
    def test_access_rule_allowing_another_call_only(self):
        token = self.token_with_access_rules([self.access_rule('GET')])
        image_id = self.create_image()
        resp, body = self.request(f'/images/{image_id}', token=token)
        self.assertEqual(401, resp.status, body)
        self.assertImageKept(image_id)

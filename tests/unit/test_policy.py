"""Policy: os_compute_api:images:delete per persona, and operator overrides.

Like Nova's per-persona policy tests, the personas allowed to delete are
listed explicitly; every other persona must be refused with 403 before
Glance is called.
"""

import os
import time

from compute_api import policies
from compute_api.api import router
from compute_api.policies import images as images_policies
from tests.unit import base

RULE = 'os_compute_api:images:delete'


def persona(roles, project=base.PROJECT):
    return {'user_id': 'u-' + '-'.join(roles or ['none']),
            'project_id': project, 'roles': roles}


# Keystone expands implied roles into the token: admin implies manager,
# manager implies member, member implies reader.
PERSONAS = {
    'project_admin': persona(['admin', 'manager', 'member', 'reader']),
    'project_manager': persona(['manager', 'member', 'reader']),
    'project_member': persona(['member', 'reader']),
    'project_reader': persona(['reader']),
    'project_no_role': persona([]),
    'project_other_role': persona(['observer']),
    'other_project_member': persona(['member', 'reader'],
                                    base.OTHER_PROJECT),
    'other_project_admin': persona(['admin', 'manager', 'member', 'reader'],
                                   base.OTHER_PROJECT),
}
# Who may ask Compute to delete an image (Glance then applies its own
# ownership rules: another project's member gets Glance's answer).
ALLOWED = {'project_admin', 'project_manager', 'project_member',
           'other_project_member', 'other_project_admin'}


class TestDeletePolicy(base.APITestCase):

    def test_personas(self):
        for name, identity in PERSONAS.items():
            self.glance.requests.clear()
            resp = self.delete_image(identity=identity)
            if name in ALLOWED:
                self.assertEqual(204, resp.status_int, name)
                self.assertEqual(1, len(self.glance.requests), name)
            else:
                self.assertFault(resp, 403, 'forbidden', RULE)
                self.assertGlanceNotCalled()

    def test_policy_is_checked_before_id_validation(self):
        resp = self.delete_image('not-a-uuid',
                                 identity=PERSONAS['project_reader'])
        self.assertFault(resp, 403, 'forbidden')

    def test_project_mismatch_is_checked_before_policy(self):
        resp = self.delete_image(project=base.OTHER_PROJECT,
                                 identity=PERSONAS['project_reader'])
        self.assertFault(resp, 400, 'badRequest')


class TestPolicyFileOverride(base.APITestCase):

    def set_policy(self, text):
        path = self.write('policy.yaml', text)
        # make sure the modification time moves even on coarse clocks
        stamp = time.time() + 1 + getattr(self, '_bump', 0)
        self._bump = getattr(self, '_bump', 0) + 1
        os.utime(path, (stamp, stamp))

    def test_override_takes_effect_without_restart(self):
        member = PERSONAS['project_member']
        reader = PERSONAS['project_reader']
        self.assertEqual(204, self.delete_image(identity=member).status_int)

        self.set_policy(f'"{RULE}": "role:admin"\n')
        self.assertFault(self.delete_image(identity=member), 403,
                         'forbidden', RULE)

        self.set_policy(f'"{RULE}": "role:reader"\n')
        self.assertEqual(204, self.delete_image(identity=reader).status_int)

        self.set_policy('{}\n')
        self.assertFault(self.delete_image(identity=reader), 403,
                         'forbidden')
        self.assertEqual(204, self.delete_image(identity=member).status_int)


class TestPolicyInCode(base.base.BaseTestCase):

    def test_rule_defaults(self):
        rules = {rule.name: rule for rule in policies.list_rules()}
        rule = rules[RULE]
        self.assertEqual('rule:project_member_or_admin', rule.check_str)
        self.assertEqual(['project'], rule.scope_types)
        self.assertTrue(rule.description)
        for base_rule in ('context_is_admin', 'project_member_api',
                          'project_member_or_admin'):
            self.assertIn(base_rule, rules)

    def test_every_routed_action_has_a_rule(self):
        documented = set()
        for rule in policies.list_rules():
            for op in getattr(rule, 'operations', None) or []:
                documented.add(('/v2.1' + op['path'], op['method']))
        conf = base.deploy.load_conf(directory='/nonexistent')
        served = set(router.build_router(conf).routes())
        self.assertEqual(served, documented)
        self.assertEqual(RULE, images_policies.DELETE)

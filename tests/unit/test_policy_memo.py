"""The enforcer's memo of decisions: it saves the evaluation of the rules,
and never outlives the rules a decision was made with."""

import logging
import os
import time
from unittest import mock

from oslo_context import context as oslo_context
from oslo_policy import policy as oslo_policy

from compute_api import exception
from compute_api import policy
from tests.unit import base

RULE = 'os_compute_api:images:delete'
MEMBER = base.MEMBER


def creds(roles, project=base.PROJECT, user='u-1'):
    return oslo_context.RequestContext(user_id=user, project_id=project,
                                       roles=roles)


class TestMemo(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.enforcer = policy.init_enforcer(self.conf)
        # counts the enforcements that oslo.policy itself evaluates
        self.evaluated = mock.patch.object(
            oslo_policy.Enforcer, 'enforce', autospec=True,
            side_effect=oslo_policy.Enforcer.enforce).start()
        self.addCleanup(mock.patch.stopall)
        self._bump = 0
        # as in production: oslo.policy's debug lines off (the test base
        # logs everything at DEBUG)
        self.oslo_log = logging.getLogger('oslo_policy.policy')
        self.addCleanup(self.oslo_log.setLevel, self.oslo_log.level)
        self.oslo_log.setLevel(logging.INFO)

    def allowed(self, ctx, project=base.PROJECT):
        try:
            policy.authorize(self.enforcer, ctx, RULE,
                             {'project_id': project})
        except exception.PolicyNotAuthorized:
            return False
        return True

    def set_file(self, name, text):
        path = self.write(name, text)
        self._bump += 1
        stamp = time.time() + self._bump
        os.utime(path, (stamp, stamp))

    def test_a_repeated_decision_is_not_evaluated_again(self):
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.assertTrue(self.allowed(member))
        self.assertTrue(self.allowed(creds(['member'])))
        self.assertEqual(1, self.evaluated.call_count)

    def test_other_credentials_or_target_are_evaluated(self):
        self.assertTrue(self.allowed(creds(['member'])))
        self.assertFalse(self.allowed(creds(['reader'])))
        self.assertTrue(self.allowed(creds(['member'], user='u-2')))
        self.assertTrue(self.allowed(creds(['member'], project='p-2'),
                                     project='p-2'))
        # the target's project is not the caller's
        self.assertFalse(self.allowed(creds(['member']), project='p-2'))
        self.assertEqual(5, self.evaluated.call_count)

    def test_refusals_are_evaluated_every_time(self):
        reader = creds(['reader'])
        self.assertFalse(self.allowed(reader))
        self.assertFalse(self.allowed(reader))
        self.assertEqual(2, self.evaluated.call_count)

    def test_a_reload_changes_the_decision(self):
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.assertTrue(self.allowed(member))  # from the memo
        self.set_file('policy.yaml', f'"{RULE}": "!"\n')
        self.assertFalse(self.allowed(member))
        self.set_file('policy.yaml', '{}\n')
        self.assertTrue(self.allowed(member))
        self.assertTrue(self.allowed(member))
        self.assertEqual(3, self.evaluated.call_count)

    def test_a_reload_through_a_referenced_rule_changes_the_decision(self):
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.set_file('policy.yaml', '"project_member_api": "role:admin"\n')
        self.assertFalse(self.allowed(member))

    def test_a_change_in_a_policy_directory_changes_the_decision(self):
        os.mkdir(os.path.join(self.config_dir, 'policy.d'))
        self.conf.set_override('policy_dirs', ['policy.d'], 'oslo_policy')
        self.enforcer = policy.init_enforcer(self.conf)
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.set_file('policy.d/deny.yaml', f'"{RULE}": "!"\n')
        self.assertFalse(self.allowed(member))

    def test_a_broken_file_is_503_despite_the_memo(self):
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.set_file('policy.yaml', f'"{RULE}": [\n')
        self.assertRaises(exception.PolicyUnavailable, self.allowed, member)

    def test_set_rules_changes_the_decision(self):
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.enforcer.set_rules(
            {RULE: oslo_policy.RuleDefault(RULE, '!').check}, overwrite=False)
        self.assertFalse(self.allowed(member))

    def test_remote_checks_are_not_remembered(self):
        self.set_file('policy.yaml',
                      f'"{RULE}": "role:member or http://127.0.0.1:9/x"\n')
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.assertTrue(self.allowed(member))
        self.assertEqual(2, self.evaluated.call_count)

    def test_not_remembered_while_oslo_policy_logs_at_debug(self):
        self.oslo_log.setLevel(logging.DEBUG)
        member = creds(['member'])
        self.assertTrue(self.allowed(member))
        self.assertTrue(self.allowed(member))
        self.assertEqual(2, self.evaluated.call_count)

    def test_unhashable_target_is_evaluated(self):
        member = creds(['member'])
        for _ in range(2):
            policy.authorize(self.enforcer, member, RULE,
                             {'project_id': base.PROJECT, 'x': {'y': 1}})
        self.assertEqual(2, self.evaluated.call_count)

    def test_the_memo_is_bounded(self):
        self.patch(policy, '_MEMO_SIZE', 3)
        for user in range(5):
            self.assertTrue(self.allowed(creds(['member'], user=str(user))))
        self.assertLessEqual(len(self.enforcer._memo.decisions), 3)

    def test_through_the_api_a_reload_changes_the_answer(self):
        self.assertEqual(204, self.delete_image(identity=MEMBER).status_int)
        self.assertEqual(204, self.delete_image(identity=MEMBER).status_int)
        self.set_file('policy.yaml', f'"{RULE}": "role:admin"\n')
        self.assertFault(self.delete_image(identity=MEMBER), 403,
                         'forbidden', RULE)

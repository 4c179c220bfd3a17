"""Policy: os_compute_api:images:delete per persona, and operator overrides.

Like Nova's per-persona policy tests, the personas allowed to delete are
listed explicitly; every other persona must be refused with 403 before
Glance is called.
"""

import logging
import os
import time

import fixtures
from oslo_context import context as oslo_context

from compute_api import deploy
from compute_api import exception
from compute_api import policies
from compute_api import policy
from compute_api.api import router
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

    def test_only_members_and_admins_may_delete(self):
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


class TestBrokenPolicyFile(base.APITestCase):
    """A policy file that cannot be used fails closed: 503, never the
    previous rules, never a 500, and the service recovers on the fix."""

    MEMBER = PERSONAS['project_member']
    BROKEN = f'"{RULE}": "role:admin\n'  # the closing quote is missing

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(
            name='compute_api.policy', level=logging.INFO))
        self._bump = 0

    def set_policy(self, text, name='policy.yaml', data=None):
        path = os.path.join(self.config_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data if data is not None else text.encode())
        self._bump += 1
        stamp = time.time() + self._bump
        os.utime(path, (stamp, stamp))
        return path

    def errors(self):
        return [line for line in self.log.output.splitlines()
                if 'Policy ' in line and 'refused (503)' in line]

    def assertUnavailable(self, identity=None):
        self.glance.requests.clear()
        resp = self.delete_image(identity=identity or self.MEMBER)
        self.assertFault(resp, 503, 'serviceUnavailable',
                         'policy of this service could not be loaded')
        self.assertNotIn(self.config_dir.encode(), resp.body)
        self.assertNotIn(b'yaml', resp.body.lower())
        self.assertGlanceNotCalled()

    def assertAllowed(self, identity=None):
        resp = self.delete_image(identity=identity or self.MEMBER)
        self.assertEqual(204, resp.status_int, resp.body)

    def test_rules_that_fail_when_evaluated_are_503(self):
        # valid YAML and check strings, but no decision can be reached
        for text in (f'"{RULE}": "rule:a"\n"a": "rule:a"\n',
                     f'"{RULE}": "rule:a"\n"a": "rule:b"\n"b": "rule:a"\n',
                     '"project_member_or_admin": '
                     '"rule:project_member_or_admin"\n',
                     f'"{RULE}": "project_id:%(project_id"\n',
                     f'"{RULE}": "http://127.0.0.1:1/check"\n'):
            self.set_policy(text)
            self.assertUnavailable()
            self.assertIn(f'The policy rule {RULE} could not be evaluated',
                          self.log.output)
        self.set_policy('{}\n')
        self.assertAllowed()

    def test_malformed_deny_edit_is_503_not_204(self):
        self.assertAllowed()
        path = self.set_policy(self.BROKEN)
        for _ in range(3):
            self.assertUnavailable()
        errors = self.errors()
        self.assertEqual(1, len(errors), self.log.output)
        self.assertIn(path, errors[0])
        self.assertIn('line 2, column 1', errors[0])

    def test_invalid_yaml_after_a_valid_override(self):
        self.set_policy(f'"{RULE}": "role:reader"\n')
        self.assertAllowed(PERSONAS['project_reader'])
        self.set_policy(f'"{RULE}": [role:reader\n')
        # the previous rules are not kept in force
        self.assertUnavailable(PERSONAS['project_reader'])
        self.assertUnavailable(PERSONAS['project_admin'])

    def test_yaml_that_is_not_a_mapping(self):
        for text in (f'- "{RULE}": "role:admin"\n', 'role:admin\n'):
            self.set_policy(text)
            self.assertUnavailable()
            self.assertIn('is not a mapping of rule names to check strings: '
                          'line 1, column 1', self.errors()[-1])

    def test_rule_that_is_not_a_string(self):
        # an empty rule in YAML is null, which oslo.policy would read as
        # "always allowed"
        for text in (f'"{RULE}":\n', f'"{RULE}": 1\n',
                     f'"{RULE}": {{role: admin}}\n'):
            self.set_policy(text)
            self.assertUnavailable(PERSONAS['project_reader'])
            self.assertIn('not a string: line 1', self.errors()[-1])

    def test_unreadable_file(self):
        path = os.path.join(self.config_dir, 'policy.yaml')
        os.remove(path)
        os.mkdir(path)
        self.assertUnavailable()
        self.assertIn(f'{path} cannot be read: Is a directory',
                      self.errors()[-1])
        os.rmdir(path)
        self.set_policy('{}\n')
        self.assertAllowed()

    def test_file_that_is_not_text(self):
        self.set_policy(None, data=b'"rule": "\xff"\n')
        self.assertUnavailable()
        self.assertIn('cannot be read as text', self.errors()[-1])

    def test_character_yaml_does_not_allow(self):
        self.set_policy(f'"{RULE}": "role:admin"\n"x": "\x07"\n')
        self.assertUnavailable()
        self.assertIn('line 2, column 7', self.errors()[-1])

    def test_broken_file_in_policy_dirs(self):
        path = self.set_policy(self.BROKEN, name='policy.d/10-images.yaml')
        self.assertUnavailable()
        self.assertIn(path, self.errors()[-1])
        self.set_policy(f'"{RULE}": "role:admin"\n',
                        name='policy.d/10-images.yaml')
        self.assertFault(self.delete_image(identity=self.MEMBER), 403,
                         'forbidden', RULE)
        self.assertAllowed(PERSONAS['project_admin'])

    def test_policy_dir_that_cannot_be_listed(self):
        self.set_policy('{}\n', name='policy.d')
        self.assertUnavailable()
        self.assertIn('cannot be listed: Not a directory', self.errors()[-1])

    def test_fixed_file_applies_without_restart(self):
        self.set_policy(self.BROKEN)
        self.assertUnavailable()
        self.set_policy(f'"{RULE}": "role:admin"\n')
        self.assertFault(self.delete_image(identity=self.MEMBER), 403,
                         'forbidden', RULE)
        self.assertAllowed(PERSONAS['project_admin'])
        self.set_policy('{}\n')
        self.assertAllowed()
        self.assertIn('can be used again', self.log.output)

    def test_logged_once_per_change(self):
        self.set_policy(self.BROKEN)
        for _ in range(3):
            self.assertUnavailable()
        self.assertEqual(1, len(self.errors()))
        self.set_policy(self.BROKEN + '# still broken\n')
        for _ in range(3):
            self.assertUnavailable()
        self.assertEqual(2, len(self.errors()))

    def test_any_change_of_the_file_is_read(self):
        # a fix with an older modification time (cp -p, a restored backup)
        self.set_policy(self.BROKEN)
        self.assertUnavailable()
        path = self.set_policy(f'"{RULE}": "role:admin"\n')
        os.utime(path, (1, 1))
        self.assertFault(self.delete_image(identity=self.MEMBER), 403,
                         'forbidden', RULE)

    def test_removed_file_is_no_error(self):
        # the defaults, once it stays removed (TestFileRewrittenInPlace);
        # until then the rules in force, never a 503
        self.set_policy(f'"{RULE}": "role:admin"\n')
        self.assertFault(self.delete_image(identity=self.MEMBER), 403,
                         'forbidden', RULE)
        os.remove(os.path.join(self.config_dir, 'policy.yaml'))
        self.assertFault(self.delete_image(identity=self.MEMBER), 403,
                         'forbidden', RULE)
        self.assertEqual([], self.errors())

    def test_broken_file_at_start_is_503_until_corrected(self):
        # a worker that starts while the file is broken serves like the
        # others (refusing to load would stop the whole WSGI server)
        path = self.set_policy(f'"{RULE}": "role:admin"\n"x": [\n')
        self.app = deploy.loadapp(deploy.load_conf(directory=self.config_dir))
        errors = self.errors()
        self.assertEqual(1, len(errors), self.log.output)
        self.assertIn(path, errors[0])
        self.assertIn('line 3, column 1', errors[0])
        self.assertUnavailable()
        self.set_policy('{}\n')
        self.assertAllowed()

    def test_policy_tools_refuse_a_broken_file(self):
        path = self.set_policy('"x": [\n')
        exc = self.assertRaises(
            policy.PolicyFileError, policy.load,
            deploy.load_conf(directory=self.config_dir))
        self.assertIn(path, str(exc))


class TestPolicyInCode(base.base.BaseTestCase):

    def test_every_routed_action_has_a_rule(self):
        documented = set()
        for rule in policies.list_rules():
            for op in getattr(rule, 'operations', None) or []:
                documented.add(('/v2.1' + op['path'], op['method']))
        conf = base.deploy.load_conf(directory='/nonexistent')
        served = set(router.build_router(conf).routes())
        self.assertEqual(served, documented)


class TestFileRewrittenInPlace(base.APITestCase):
    """A policy file rewritten in place (``cat new > policy.yaml``) is
    empty for a moment: the rules in force stay until it is written again,
    and an empty or removed file counts only once it has stayed so."""

    def setUp(self):
        super().setUp()
        self.now = 1000.0
        self.path = os.path.join(self.config_dir, 'policy.yaml')
        self.stamp = time.time()
        self.rewrite(f'"{RULE}": "!"\n')
        self.enforcer = policy.Enforcer(self.conf, clock=lambda: self.now)
        member = PERSONAS['project_member']
        self.member = oslo_context.RequestContext(
            user_id=member['user_id'], project_id=member['project_id'],
            roles=member['roles'])

    def rewrite(self, text):
        with open(self.path, 'w') as f:
            f.write(text)
        self.stamp += 1  # the modification time moves on any clock
        os.utime(self.path, (self.stamp, self.stamp))

    def allowed(self):
        try:
            self.enforcer.authorize(self.member, RULE,
                                    {'project_id': base.PROJECT})
        except exception.PolicyNotAuthorized:
            return False
        return True

    def test_an_emptied_file_keeps_the_rules_until_it_is_written(self):
        self.assertFalse(self.allowed())
        self.rewrite('')  # truncated, the new text not written yet
        self.assertFalse(self.allowed())
        self.now += policy.SETTLE - 0.1
        self.assertFalse(self.allowed())
        self.rewrite(f'"{RULE}": "!"\n# edited\n')
        self.now += 0.2
        self.assertFalse(self.allowed())

    def test_a_file_left_empty_means_no_overrides(self):
        self.rewrite('')
        self.assertFalse(self.allowed())
        self.now += policy.SETTLE
        self.assertTrue(self.allowed())  # the default rule: a member

    def test_a_removed_file_counts_once_it_stays_removed(self):
        os.unlink(self.path)
        self.assertFalse(self.allowed())
        self.now += policy.SETTLE
        self.assertTrue(self.allowed())

    def test_other_changes_take_effect_at_once(self):
        self.rewrite('{}\n')
        self.assertTrue(self.allowed())
        self.rewrite(f'"{RULE}": "!"\n')
        self.assertFalse(self.allowed())

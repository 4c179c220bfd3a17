"""Canaries: what compute-api relies on in its libraries beyond their
documented interfaces (doc/source/contributor.rst lists each). Each test
fails loudly when a release of the library changes the behaviour, rather
than letting the service's code go silently inert. They run with the
libraries of every supported series (tools/run-tests compat)."""

import os

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg
from oslotest import base as oslo_base
import requests

from compute_api import policy
from tests.unit import base

RULE = 'os_compute_api:images:delete'


class TestOsloPolicy(base.APITestCase):

    def test_an_enforcer_with_use_conf_off_is_never_reloaded(self):
        # compute_api.policy.load: the rules in force are never edited in
        # place; a change of the files makes a new enforcer
        path = os.path.join(self.config_dir, 'policy.yaml')
        with open(path, 'w') as f:
            f.write(f'"{RULE}": "role:admin"\n')
        enforcer = policy.load(self.conf)
        rules = enforcer.rules
        with open(path, 'w') as f:
            f.write(f'"{RULE}": "role:member"\n')
        os.utime(path, (1, 1))
        enforcer.load_rules()
        self.assertIs(rules, enforcer.rules)
        self.assertEqual('role:admin', str(enforcer.rules[RULE]))


class TestKeystoneauth(oslo_base.BaseTestCase):

    def test_the_session_of_a_keystoneauth_session(self):
        # compute_api.image.glance: the cookie policy is set on the
        # requests session keystoneauth1 builds (Session.session)
        conf = cfg.ConfigOpts()
        conf.register_opts(ks_loading.get_session_conf_options(), 'glance')
        conf([])
        session = ks_loading.load_session_from_conf_options(conf, 'glance')
        self.assertIsInstance(session.session, requests.Session)

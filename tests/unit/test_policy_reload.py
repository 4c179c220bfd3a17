"""A change of the policy files never exposes a partial set of rules: with
threads authorizing while the file is rewritten, every decision is the one
the rules (the same before and after) make."""

import os
import threading
import time

from oslo_context import context as oslo_context

from compute_api import exception
from compute_api import policy
from tests.unit import base

RULE = 'os_compute_api:images:delete'
THREADS = 8
REWRITES = 150


def creds(roles):
    return oslo_context.RequestContext(user_id='u-1', project_id=base.PROJECT,
                                       roles=roles)


class TestReloadUnderLoad(base.APITestCase):

    def test_no_wrong_decision_while_the_file_is_rewritten(self):
        path = os.path.join(self.config_dir, 'policy.yaml')
        text = f'"{RULE}": "role:member and project_id:%(project_id)s"\n'
        with open(path, 'w') as f:
            f.write(text)
        enforcer = policy.Enforcer(self.conf)
        target = {'project_id': base.PROJECT}
        member, reader = creds(['member']), creds(['reader'])
        done = threading.Event()
        wrong = []
        decisions = [0]

        def authorize():
            while not done.is_set():
                try:
                    enforcer.authorize(member, RULE, target)
                except exception.ComputeAPIError as exc:
                    wrong.append(('member', type(exc).__name__))
                try:
                    enforcer.authorize(reader, RULE, target)
                    wrong.append(('reader', 'allowed'))
                except exception.PolicyNotAuthorized:
                    pass
                decisions[0] += 2

        threads = [threading.Thread(target=authorize)
                   for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            for i in range(REWRITES):
                # the same rules, a new file each time (size and time vary)
                with open(path + '.new', 'w') as f:
                    f.write(text + '#' * (i % 7) + '\n')
                os.replace(path + '.new', path)
                stamp = time.time() + i
                os.utime(path, (stamp, stamp))
                time.sleep(0.002)
        finally:
            done.set()
            for thread in threads:
                thread.join()
        self.assertEqual([], wrong[:10])
        self.assertGreater(decisions[0], REWRITES)

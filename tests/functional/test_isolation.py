"""Isolation: who can delete what, on the real Keystone and Glance.

Images owned by project ``demo`` in every visibility are deleted by users of
three projects (``demo``, ``alt``, ``admin``) with every role. Each outcome
is listed explicitly; identity headers a client adds are never trusted.
"""

from tests.functional import base

RULE = 'os_compute_api:images:delete'
VISIBILITIES = ('private', 'shared', 'community', 'public', 'protected')
DENIED_BY_POLICY = {v: 403 for v in VISIBILITIES}

# user -> {visibility of a demo-owned image: expected status}
EXPECTED = {
    # the owner's members and admins: everything but protected images
    'demo-member': {'private': 204, 'shared': 204, 'community': 204,
                    'public': 204, 'protected': 403},
    'demo-admin': {'private': 204, 'shared': 204, 'community': 204,
                   'public': 204, 'protected': 403},
    # readers and users without a role: refused by policy before Glance
    'demo-reader': DENIED_BY_POLICY,
    'demo-norole': DENIED_BY_POLICY,
    'alt-reader': DENIED_BY_POLICY,
    'alt-norole': DENIED_BY_POLICY,
    # another project's member: cannot see private/shared images (404),
    # sees but may not delete community/public ones (403)
    'alt-member': {'private': 404, 'shared': 404, 'community': 403,
                   'public': 403, 'protected': 404},
    # admins of other projects are Glance admins: all but protected
    'alt-admin': {'private': 204, 'shared': 204, 'community': 204,
                  'public': 204, 'protected': 403},
    'admin': {'private': 204, 'shared': 204, 'community': 204,
              'public': 204, 'protected': 403},
}
FAULTS = {403: 'forbidden', 404: 'itemNotFound'}
SPOOFED = {'X-Roles': 'admin,member,reader', 'X-Role': 'admin',
           'X-Is-Admin-Project': 'True', 'X-Identity-Status': 'Confirmed',
           'X-Service-Roles': 'admin,service'}


class TestIsolationMatrix(base.FunctionalTestCase):

    def create(self, visibility):
        if visibility == 'protected':
            return self.stack.create_image(visibility='private',
                                           protected=True)
        # only admins may publicise images in Glance
        owner = 'demo-admin' if visibility == 'public' else 'demo-member'
        return self.stack.create_image(user_name=owner,
                                       visibility=visibility)

    def check_user(self, user, spoof=False):
        for visibility, expected in EXPECTED[user].items():
            image_id = self.create(visibility)
            headers = dict(SPOOFED) if spoof else {}
            if spoof:
                headers['X-Project-Id'] = self.state['projects']['demo']
            resp = self.delete(image_id, user=user, headers=headers)
            label = f'{user} deleting a {visibility} image'
            if expected == 204:
                self.assertDeleted(resp, image_id)
                continue
            self.assertFault(resp, expected, FAULTS[expected])
            if EXPECTED[user] is DENIED_BY_POLICY:
                self.assertIn(RULE, resp.json()['forbidden']['message'],
                              label)
            self.assertImageKept(image_id)

    def test_demo_member(self):
        self.check_user('demo-member')

    def test_demo_admin(self):
        self.check_user('demo-admin')

    def test_demo_reader_and_norole(self):
        self.check_user('demo-reader')
        self.check_user('demo-norole')

    def test_alt_member(self):
        self.check_user('alt-member')

    def test_alt_reader_and_norole(self):
        self.check_user('alt-reader')
        self.check_user('alt-norole')

    def test_alt_admin(self):
        self.check_user('alt-admin')

    def test_admin(self):
        self.check_user('admin')

    def test_spoofed_identity_headers_change_nothing(self):
        for user in ('alt-member', 'demo-reader', 'alt-norole'):
            self.check_user(user, spoof=True)

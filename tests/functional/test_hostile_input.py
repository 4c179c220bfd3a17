"""Hostile input against the real stack (hypothesis, bounded).

Whatever the path, method and headers, the service answers without a 500,
with a JSON fault and request ids for every error; Glance's own access log
shows that compute-api never sent it anything but
``DELETE /v2/images/<uuid>``, and a canary image nobody addressed survives.
"""

import os
import re
from urllib import parse

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.functional import base

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
GLANCE_LINE = re.compile(r'"(\S+) (\S+) HTTP/1\.[01]" .* "compute-api ')
ALLOWED_GLANCE = re.compile(r'^DELETE /v2/images/[0-9a-fA-F-]{36}$')

segments = st.one_of(
    st.uuids().map(str),
    st.text(max_size=60),
    st.binary(max_size=40).map(lambda b: b.decode('latin-1')),
    st.sampled_from(['..', '.', '%2e%2e', '/', '?x=1', '#f', '\x00', ' ',
                     '\r\nX-Injected: 1', 'images', '\u202e\u0000'])
)
methods = st.sampled_from(['DELETE', 'GET', 'PUT', 'POST', 'PATCH',
                           'HEAD', 'TRACE', 'PROPFIND'])
versions = st.one_of(
    st.none(), st.sampled_from(['compute 2.1', 'compute 2.35', 'latest',
                                'compute 2.36', 'compute 1.0', 'x']),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126),
            max_size=30).map(lambda s: f'compute {s}'),
    # around int()'s default limit of 4,300 digits
    st.integers(4290, 4310).map(lambda n: 'compute 2.' + '9' * n))


class TestHostileInputOnTheStack(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.canary = self.stack.create_image()
        self.token = self.stack.token('demo-member')
        self.glance_log = os.path.join(self.state['workdir'], 'logs',
                                       'glance-access.log')

    def glance_log_size(self):
        return os.path.getsize(self.glance_log)

    def glance_requests_from_compute(self, since):
        """What compute-api sent Glance after byte ``since`` of its log."""
        with open(self.glance_log, 'rb') as f:
            f.seek(since)
            text = f.read().decode('utf-8', 'replace')
        return [' '.join(m.groups())
                for m in map(GLANCE_LINE.search, text.splitlines()) if m]

    @SETTINGS
    @given(project=st.one_of(st.none(), segments), image_id=segments,
           method=methods, version=versions)
    def test_paths_methods_and_versions(self, project, image_id, method,
                                        version):
        path = '/v2.1'
        if project is not None:
            path += '/' + parse.quote(project.encode('utf-8',
                                                     'surrogatepass'),
                                      safe='')
        path += '/images/' + parse.quote(
            image_id.encode('utf-8', 'surrogatepass'), safe='')
        headers = {'OpenStack-API-Version': version} if version else {}
        resp = self.call(path, method=method, token=self.token,
                         headers=headers)
        self.assertNotEqual(500, resp.status_code)
        expected = (204, 400, 403, 404, 405, 406, 413)
        if method in ('GET', 'HEAD'):
            # the HTTP client collapses '/v2.1/images/..' to '/v2.1/',
            # whose version document is 200
            expected += (200,)
        self.assertIn(resp.status_code, expected)
        if resp.status_code >= 400 and method != 'HEAD':
            self.assertTrue(resp.headers['Content-Type'].startswith(
                'application/json'))
            self.assertNotIn('<', resp.text)

    def test_glance_is_sent_only_single_image_deletes(self):
        # A real delete, then a bounded hostile batch; Glance's log from
        # before the delete on (whatever ran before, or runs meanwhile).
        since = self.glance_log_size()
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id), image_id)
        self.test_paths_methods_and_versions()
        sent = self.glance_requests_from_compute(since)
        self.assertIn(f'DELETE /v2/images/{image_id}', sent)
        for line in sent:
            self.assertRegex(line, ALLOWED_GLANCE)
        self.assertImageKept(self.canary)

"""Logs: one access line per request, request ids on every line about a
request, and never a token."""

import logging

from oslo_context import context as oslo_context

from tests.unit import base

TOKEN = 'gAAAAABsecret-token-value-that-must-never-be-logged'


class _Capture(logging.Handler):
    """Records each message with the context current when it was logged
    (what oslo.log's formatter prints as the request ids)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        ctx = oslo_context.get_current()
        self.lines.append((record.name, record.getMessage(),
                           getattr(ctx, 'request_id', None),
                           getattr(ctx, 'global_request_id', None)))


class TestLogging(base.APITestCase):

    def setUp(self):
        super().setUp()
        self.capture = _Capture()
        root = logging.getLogger()
        root.addHandler(self.capture)
        self.addCleanup(root.removeHandler, self.capture)
        old_level = root.level
        root.setLevel(logging.DEBUG)
        self.addCleanup(root.setLevel, old_level)

    def access_lines(self):
        return [line for line in self.capture.lines
                if line[0] == 'compute_api.access']

    def test_one_access_line_per_request_with_its_request_id(self):
        identity = dict(base.MEMBER, token=TOKEN)
        responses = [
            self.delete_image(identity=identity),
            self.delete_image(identity=None),
            self.request('/v2.1/nothing', identity=identity),
        ]
        lines = self.access_lines()
        self.assertEqual(len(responses), len(lines))
        for resp, (_, message, request_id, _) in zip(responses, lines,
                                                      strict=True):
            self.assertEqual(resp.headers['x-openstack-request-id'],
                             request_id)
            self.assertIn(f'status: {resp.status_int}', message)
            self.assertIn('DELETE /v2.1/', message)

    def test_glance_failure_is_logged_with_ids_and_glance_request_id(self):
        inbound = 'req-11111111-2222-4333-8444-555555555555'
        self.glance.default = (500, b'<html>database is locked</html>', 0)
        resp = self.delete_image(
            identity=dict(base.MEMBER, token=TOKEN),
            headers={'X-OpenStack-Request-ID': inbound})
        self.assertFault(resp, 503, 'serviceUnavailable')
        (warning,) = [line for line in self.capture.lines
                      if 'Image service answered 500' in line[1]]
        self.assertIn('req-glance-fake', warning[1])
        self.assertEqual(resp.headers['x-openstack-request-id'], warning[2])
        self.assertEqual(inbound, warning[3])

    def test_tokens_never_appear_in_logs_at_any_level(self):
        identity = dict(base.MEMBER, token=TOKEN)
        self.delete_image(identity=identity)
        self.glance.default = (503, b'', 0)
        self.delete_image(identity=identity)
        self.glance.default = (None, b'', 0)
        self.delete_image(identity=identity, headers={'X-Auth-Token': TOKEN})
        self.assertGreater(len(self.capture.lines), 5)
        for line in self.capture.lines:
            self.assertNotIn(TOKEN, line[1])
            self.assertNotIn(TOKEN[:20], line[1])

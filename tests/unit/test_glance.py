"""The Glance adapter: every Glance outcome maps to the contract's answer."""

import socket
import time
import uuid

from compute_api.image import glance
from tests.unit import base
from tests.unit import fakes

HTML_404 = b'<html><body><h1>404 Not Found</h1>No image</body></html>'
DOUBLE_DELETE = (b'{"message": "Image status transition from deleted to '
                 b'deleted is not allowed<br /><br />", "code": "400 Bad '
                 b'Request", "title": "Bad Request"}')


class TestGlanceOutcomes(base.APITestCase):

    def answer(self, *answers):
        self.glance.answers = [(a if isinstance(a, tuple) else (a, b'', 0))
                               for a in answers]

    def test_request_sent_to_glance(self):
        image_id = str(uuid.uuid4())
        self.delete_image(image_id, identity=dict(base.MEMBER, token='tk1'))
        (sent,) = self.glance.requests
        self.assertEqual('DELETE', sent.method)
        self.assertEqual(f'/v2/images/{image_id}', sent.path)
        self.assertEqual('tk1', sent.headers['X-Auth-Token'])
        self.assertEqual('application/json', sent.headers['Accept'])
        self.assertIn('compute-api', sent.headers['User-Agent'])

    def test_success_statuses(self):
        for status in (204, 200):
            self.answer(status)
            resp = self.delete_image()
            self.assertEqual(204, resp.status_int)
            self.assertEqual(b'', resp.body)

    def test_mapped_statuses(self):
        cases = [
            ((404, HTML_404, 0), 404, 'itemNotFound'),
            ((400, DOUBLE_DELETE, 0), 404, 'itemNotFound'),
            ((403, b'<html>forbidden</html>', 0), 403, 'forbidden'),
            ((409, b'{"message": "in use"}', 0), 409, 'conflictingRequest'),
            ((401, b'<html>401</html>', 0), 401, 'unauthorized'),
            ((400, b'{"message": "something else"}', 0), 503,
             'serviceUnavailable'),
            ((500, b'database is locked', 0), 503, 'serviceUnavailable'),
            ((501, b'', 0), 503, 'serviceUnavailable'),
            ((302, b'', 0), 503, 'serviceUnavailable'),
            ((413, b'', 0), 503, 'serviceUnavailable'),
        ]
        for answer, status, name in cases:
            self.glance.requests.clear()
            self.answer(answer)
            resp = self.delete_image()
            self.assertFault(resp, status, name)
            self.assertNotIn(answer[1][:20] or b'\x00', resp.body)
            self.assertEqual(1, len(self.glance.requests), answer)

    def test_glance_401_asks_the_client_to_authenticate_again(self):
        self.answer(401)
        resp = self.delete_image()
        self.assertFault(resp, 401, 'unauthorized')
        self.assertEqual(f'Keystone uri="{fakes.KEYSTONE}"',
                         resp.headers['WWW-Authenticate'])

    def test_retriable_statuses_are_retried_then_503(self):
        for status in (502, 503, 504):
            self.glance.requests.clear()
            self.glance.default = (status, b'<html>busy</html>', 0)
            resp = self.delete_image()
            self.assertFault(resp, 503, 'serviceUnavailable')
            # one attempt plus [glance] status_code_retries (default 1)
            self.assertEqual(2, len(self.glance.requests))

    def test_retry_after_cannot_stretch_the_bound(self):
        self.glance.extra_headers = {'Retry-After': '30'}
        self.glance.default = (503, b'', 0)
        start = time.monotonic()
        resp = self.delete_image()
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertLess(time.monotonic() - start, 2)
        self.assertEqual(2, len(self.glance.requests))

    def test_retry_that_succeeds(self):
        self.answer(503, 204)
        self.assertEqual(204, self.delete_image().status_int)
        self.assertEqual(2, len(self.glance.requests))

    def test_answer_lost_after_glance_acted_is_404(self):
        # The first attempt reached Glance, which deleted the image, but the
        # connection dropped before its answer arrived; keystoneauth retries
        # and Glance now says 404. The client gets 404: the image is gone,
        # and the service cannot prove it was this request that deleted it,
        # so it never reports a deletion it did not see.
        self.answer((None, b'', 0), 404)
        resp = self.delete_image()
        self.assertFault(resp, 404, 'itemNotFound')
        self.assertEqual(2, len(self.glance.requests))

    def test_dropped_connection_is_503(self):
        self.glance.default = (None, b'', 0)
        resp = self.delete_image()
        self.assertFault(resp, 503, 'serviceUnavailable')
        # connection failures are retried: 1 + connect_retries (default 2)
        self.assertEqual(3, len(self.glance.requests))


class TestGlanceUnreachable(base.APITestCase):

    def base_conf(self):
        # A port nothing listens on: bind, note the port, close.
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        return super().base_conf().replace(
            self.glance.url, f'http://127.0.0.1:{port}')

    def test_connection_refused_is_503_within_bound(self):
        start = time.monotonic()
        resp = self.delete_image()
        elapsed = time.monotonic() - start
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertLess(elapsed, 5)


class TestGlanceStalled(base.APITestCase):

    conf_text = '[glance]\nconnect_retries = 0\n'

    def test_timeout_is_503_after_the_configured_timeout(self):
        self.glance.default = (204, b'', 5)  # answers after 5 s
        start = time.monotonic()
        resp = self.delete_image()
        elapsed = time.monotonic() - start
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertGreaterEqual(elapsed, 2)   # [glance] timeout = 2
        self.assertLess(elapsed, 4.5)


class TestNoImageEndpoint(base.APITestCase):

    def base_conf(self):
        # No endpoint_override, and the caller's token has no catalog.
        return '[oslo_policy]\npolicy_file = policy.yaml\n'

    def test_missing_catalog_entry_is_503(self):
        resp = self.delete_image()
        self.assertFault(resp, 503, 'serviceUnavailable')


class TestImagePath(base.base.BaseTestCase):

    def test_id_is_one_encoded_segment(self):
        for image_id, expected in (
                ('abc', '/v2/images/abc'),
                ('a/b', '/v2/images/a%2Fb'),
                ('a?b#c', '/v2/images/a%3Fb%23c'),
                ('..', '/v2/images/..'),
                ('a b%', '/v2/images/a%20b%25')):
            self.assertEqual(expected, glance.image_path(image_id))

"""The Glance adapter: every Glance outcome maps to the contract's answer."""

import socket
import time
import uuid

import fixtures
from keystoneauth1 import loading as ks_loading
from keystoneauth1.identity import v3
import webob

from compute_api import context
from compute_api import deploy
from compute_api import exception
from compute_api.conf import glance as glance_conf
from compute_api.image import glance
from tests.unit import base
from tests.unit import fakes

HTML_404 = b'<html><body><h1>404 Not Found</h1>No image</body></html>'
DOUBLE_DELETE = (b'{"message": "Image status transition from deleted to '
                 b'deleted is not allowed<br /><br />", "code": "400 Bad '
                 b'Request", "title": "Bad Request"}')


def closed_port():
    """A loopback port nothing listens on: bound, noted, closed."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


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
        return super().base_conf().replace(
            self.glance.url, f'http://127.0.0.1:{closed_port()}')

    def test_connection_refused_is_503_within_bound(self):
        start = time.monotonic()
        resp = self.delete_image()
        elapsed = time.monotonic() - start
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertLess(elapsed, 5)


class TestGlanceStalled(base.APITestCase):

    conf_text = '[glance]\nconnect_retries = 0\ntimeout = 1\n'

    def test_timeout_is_503_after_the_configured_timeout(self):
        self.glance.default = (204, b'', 30)  # answers when the test ends
        start = time.monotonic()
        resp = self.delete_image()
        elapsed = time.monotonic() - start
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertGreaterEqual(elapsed, 1)
        self.assertLess(elapsed, 10)  # total_timeout is 40 s


class TestNoImageEndpoint(base.APITestCase):

    def base_conf(self):
        # No endpoint_override, and the caller's token has no catalog.
        return '[oslo_policy]\npolicy_file = policy.yaml\n'

    def test_missing_catalog_entry_is_503(self):
        resp = self.delete_image()
        self.assertFault(resp, 503, 'serviceUnavailable')


class TestImageIdCheck(base.APITestCase):

    def test_only_whole_uuids_are_sent_to_glance(self):
        image_api = glance.ImageAPI(self.conf)
        image_id = str(uuid.uuid4())
        for bad in (image_id + '\n', image_id + '\r\n', '\n' + image_id,
                    image_id + '\x00', image_id + ' '):
            self.assertRaises(exception.ImageNotFound, image_api.delete,
                              None, bad)
        self.assertGlanceNotCalled()


class TestImagePath(base.base.BaseTestCase):

    def test_id_is_one_encoded_segment(self):
        for image_id, expected in (
                ('abc', '/v2/images/abc'),
                ('a/b', '/v2/images/a%2Fb'),
                ('a?b#c', '/v2/images/a%3Fb%23c'),
                ('..', '/v2/images/..'),
                ('a b%', '/v2/images/a%20b%25')):
            self.assertEqual(expected, glance.image_path(image_id))


class TestCredentialsSent(base.APITestCase):
    """The caller's token always; the service's own token by default."""

    def sent_headers(self, **identity):
        resp = self.delete_image(identity=dict(base.MEMBER, **identity))
        self.assertEqual(204, resp.status_int, resp.body)
        return self.glance.requests[-1].headers

    def test_service_token_sent_by_default(self):
        self.assertTrue(self.conf.glance.send_service_token)
        headers = self.sent_headers(token='tk1')
        self.assertEqual('tk1', headers['X-Auth-Token'])
        self.assertEqual(fakes.SERVICE_TOKEN, headers['X-Service-Token'])

    def test_glance_401_is_not_sent_again(self):
        # Sending the same tokens again cannot change Glance's answer.
        self.glance.default = (401, b'', 0)
        resp = self.delete_image()
        self.assertFault(resp, 401, 'unauthorized')
        self.assertEqual(1, len(self.glance.requests))


class TestIdentityFailure(base.APITestCase):
    """The service's own token cannot be had: the Identity service is named
    in the answer and the log, and Glance is never called."""

    def assertIdentityUnavailable(self, keystone_url):
        service_auth = v3.Password(
            auth_url=keystone_url, username='compute', password='secret',
            project_name='service', user_domain_id='default',
            project_domain_id='default')
        logs = self.useFixture(fixtures.FakeLogger(name='compute_api'))
        resp = self.delete_image(
            identity=dict(base.MEMBER, service_auth=service_auth))
        self.assertFault(resp, 503, 'serviceUnavailable',
                         'The Identity service')
        self.assertNotIn('Image service is unavailable', resp.text)
        self.assertEqual([], self.glance.requests)
        self.assertIn('Identity service failed to issue the service token',
                      logs.output)
        self.assertNotIn('Image service unreachable', logs.output)

    def test_keystone_answering_500(self):
        keystone = fakes.FakeGlance()  # any loopback server with answers
        self.addCleanup(keystone.stop)
        keystone.default = (500, b'{"error": {"code": 500}}', 0)
        self.assertIdentityUnavailable(keystone.url + '/v3')
        self.assertEqual(['/v3/auth/tokens'],
                         [r.path for r in keystone.requests])

    def test_keystone_unreachable(self):
        port = closed_port()
        self.assertIdentityUnavailable(f'http://127.0.0.1:{port}/v3')


class TestWithoutServiceToken(base.APITestCase):

    conf_text = '[glance]\nsend_service_token = false\n'

    def test_only_the_callers_token_is_sent(self):
        resp = self.delete_image(identity=dict(base.MEMBER, token='tk1'))
        self.assertEqual(204, resp.status_int, resp.body)
        (sent,) = self.glance.requests
        self.assertEqual('tk1', sent.headers['X-Auth-Token'])
        self.assertNotIn('X-Service-Token', sent.headers)

    def test_glance_401_is_not_sent_again(self):
        self.glance.default = (401, b'', 0)
        self.assertFault(self.delete_image(), 401, 'unauthorized')
        self.assertEqual(1, len(self.glance.requests))


class TestCatalog(base.APITestCase):
    """Without endpoint_override, Glance comes from the caller's catalog,
    whether or not the service token is sent."""

    def base_conf(self):
        return '[oslo_policy]\npolicy_file = policy.yaml\n'

    def test_endpoint_from_catalog(self):
        for send in ('true', 'false'):
            self.write(deploy.CONFIG_FILE, self.base_conf() +
                       f'[glance]\nsend_service_token = {send}\n')
            app = deploy.loadapp(deploy.load_conf(directory=self.config_dir))
            self.glance.requests.clear()
            identity = dict(base.MEMBER, token='tk1',
                            image_url=self.glance.url)
            req = webob.Request.blank(
                f'/v2.1/images/{uuid.uuid4()}', method='DELETE',
                environ={fakes.IDENTITY_KEY: identity})
            self.assertEqual(204, req.get_response(app).status_int, send)
            (sent,) = self.glance.requests
            self.assertEqual('tk1', sent.headers['X-Auth-Token'])
            self.assertEqual(send == 'true', 'X-Service-Token' in sent.headers)

    def delete_with_catalog(self, app, image_url, token):
        identity = dict(base.MEMBER, token=token, image_url=image_url)
        req = webob.Request.blank(
            f'/v2.1/images/{uuid.uuid4()}', method='DELETE',
            environ={fakes.IDENTITY_KEY: identity})
        return req.get_response(app)

    def test_endpoint_follows_the_catalog(self):
        # a token validated again may bring a catalog with another Glance
        other = fakes.FakeGlance()
        self.addCleanup(other.stop)
        app = deploy.loadapp(deploy.load_conf(directory=self.config_dir))
        for image_url in (self.glance.url, other.url, self.glance.url):
            resp = self.delete_with_catalog(app, image_url, 'tk1')
            self.assertEqual(204, resp.status_int)
        self.assertEqual(2, len(self.glance.requests))
        (sent,) = other.requests
        self.assertTrue(sent.path.startswith('/v2/images/'), sent.path)

    def test_endpoint_with_a_path_keeps_it(self):
        app = deploy.loadapp(deploy.load_conf(directory=self.config_dir))
        image_id = str(uuid.uuid4())
        identity = dict(base.MEMBER, image_url=self.glance.url + '/image/')
        req = webob.Request.blank(
            f'/v2.1/images/{image_id}', method='DELETE',
            environ={fakes.IDENTITY_KEY: identity})
        self.assertEqual(204, req.get_response(app).status_int)
        (sent,) = self.glance.requests
        self.assertEqual(f'/image/v2/images/{image_id}', sent.path)


class TestNoCookies(base.APITestCase):
    """One HTTP session serves every user: a cookie set on one user's call
    must never be sent with another's."""

    def test_cookie_from_one_user_is_not_sent_for_another(self):
        self.glance.extra_headers = {
            'Set-Cookie': 'lb-session=user-a-secret; Path=/'}
        self.delete_image(identity=dict(base.MEMBER, token='tk-a'))
        other = dict(base.MEMBER, user_id='u-other', token='tk-b')
        self.assertEqual(204, self.delete_image(identity=other).status_int)
        first, second = self.glance.requests
        self.assertEqual('tk-b', second.headers['X-Auth-Token'])
        self.assertNotIn('Cookie', second.headers)


class ClockTestCase(base.APITestCase):
    """The Glance adapter on an injected clock (``fakes.FakeClock``)."""

    def image_api(self, tick=0.0, glance_url=None, **options):
        conf_text = self.base_conf().replace(self.glance.url,
                                             glance_url or self.glance.url)
        self.write(deploy.CONFIG_FILE, conf_text.replace(
            '[oslo_policy]\n', ''.join(
                f'{key} = {value}\n' for key, value in options.items())
            + '[oslo_policy]\n'))
        self.clock = fakes.FakeClock(tick)
        return glance.ImageAPI(deploy.load_conf(directory=self.config_dir),
                               clock=self.clock, sleep=self.clock.sleep)

    def context(self):
        return context.RequestContext(
            user_id=base.MEMBER['user_id'],
            project_id=base.MEMBER['project_id'],
            user_auth_plugin=fakes.user_auth_plugin(base.MEMBER))

    def advance(self, seconds):
        self.clock.now += seconds

    def delete(self, image_api):
        image_api.delete(self.context(), str(uuid.uuid4()))

    def assertUnavailable(self, image_api):
        self.assertRaises(exception.ImageServiceUnavailable,
                          self.delete, image_api)


class TestTotalTimeout(ClockTestCase):
    """[glance] total_timeout bounds a delete: no attempt starts after it
    and none waits longer than the time left (base.APITestCase sets
    timeout = 2)."""

    def test_socket_timeout_is_capped_at_the_time_left(self):
        # each reading of the clock takes 0.8 s: 0.2 s are left when the
        # attempt starts, and the socket waits no longer than that
        image_api = self.image_api(tick=0.8, total_timeout=1)
        self.glance.default = (204, b'', 30)  # answers when the test ends
        start = time.monotonic()
        self.assertUnavailable(image_api)
        self.assertLess(time.monotonic() - start, 1.5)
        self.assertEqual(1, len(self.glance.requests))

    def test_no_retry_starts_after_the_deadline(self):
        image_api = self.image_api(total_timeout=1, status_code_retries=10,
                                   status_code_retry_delay=0.01)
        self.glance.clock = self.clock
        self.glance.default = (503, b'', 0.4)   # each answer takes 0.4 s
        self.assertUnavailable(image_api)
        # attempts at 0, 0.41 and 0.82 s; the third ends past the deadline
        self.assertEqual(3, len(self.glance.requests))
        self.assertEqual([0.01, 0.01, 0], self.clock.slept)

    def test_a_connection_that_timed_out_is_not_reused(self):
        image_api = self.image_api(tick=0.8, total_timeout=1)
        self.glance.answers = [(204, b'', 30)]  # answers when the test ends
        self.assertUnavailable(image_api)
        self.delete(image_api)  # the answer of a new connection, at once
        self.assertEqual(2, len(self.glance.requests))

    def test_retry_after_cannot_stretch_the_bound(self):
        image_api = self.image_api(status_code_retry_delay=0.5)
        self.glance.extra_headers = {'Retry-After': '30'}
        self.glance.default = (503, b'', 0)
        self.assertUnavailable(image_api)
        self.assertEqual(2, len(self.glance.requests))
        self.assertEqual([0.5], self.clock.slept)

    def test_a_trickling_glance_is_bounded_by_the_worker_timeout(self):
        # Each read gets a byte well within the socket timeout: the attempt
        # goes on past total_timeout until Glance ends its answer (here a
        # 204 after 0.3 s, 6 s or so on the service's clock) or, in
        # production, the WSGI server's worker timeout ends the request.
        drip = fakes.DripServer(interval=0.05, give_up=0.3,
                                on_drip=lambda: self.advance(1))
        self.addCleanup(drip.stop)
        image_api = self.image_api(glance_url=drip.url, total_timeout=1,
                                   connect_retries=5)
        start = self.clock.now
        self.delete(image_api)
        self.assertGreater(self.clock.now - start, 1)
        self.assertEqual(1, drip.connections)


class TestRetries(ClockTestCase):
    """The retries of [glance], attempt by attempt, on an injected clock."""

    def test_status_retries_with_their_delay(self):
        image_api = self.image_api(status_code_retries=2,
                                   status_code_retry_delay=0.5)
        self.glance.answers = [(503, b'', 0), (502, b'', 0)]
        self.delete(image_api)
        self.assertEqual(3, len(self.glance.requests))
        self.assertEqual([0.5, 0.5], self.clock.slept)

    def test_connect_retries_then_503(self):
        self.glance.stop()
        image_api = self.image_api(connect_retries=3,
                                   connect_retry_delay=0.25)
        self.assertUnavailable(image_api)
        self.assertEqual([0.25] * 3, self.clock.slept)

    def test_no_attempt_after_total_timeout(self):
        image_api = self.image_api(status_code_retries=100,
                                   status_code_retry_delay=3,
                                   total_timeout=10)
        self.glance.default = (503, b'', 0)
        self.assertUnavailable(image_api)
        # attempts at 0, 3, 6 and 9 s; the delay after it is cut to 1 s
        self.assertEqual(4, len(self.glance.requests))
        self.assertEqual([3, 3, 3, 1], self.clock.slept)

    def test_other_statuses_are_not_retried(self):
        image_api = self.image_api(status_code_retries=3)
        self.glance.default = (500, b'', 0)
        self.assertUnavailable(image_api)
        self.assertEqual(1, len(self.glance.requests))
        self.assertEqual([], self.clock.slept)


class TestTransportOptions(base.APITestCase):

    def test_tls_options_need_a_keystoneauth1_that_has_them(self):
        self.write(deploy.CONFIG_FILE, self.base_conf().replace(
            '[glance]\n',
            '[glance]\ntls_min_version = 1.3\ntls_ciphers = HIGH\n'))
        conf = deploy.load_conf(directory=self.config_dir)
        names = {opt.dest for opt in
                 ks_loading.get_session_conf_options()}
        if 'tls_ciphers' in names:
            glance.ImageAPI(conf)  # keystoneauth1 applies them itself
            self.assertEqual([], glance_conf.unsupported(conf))
        else:
            exc = self.assertRaises(deploy.ConfigurationError,
                                    glance.ImageAPI, conf)
            self.assertIn('tls_ciphers (keystoneauth1 5.17.0 or newer)',
                          str(exc))
            self.assertIn('tls_min_version', str(exc))

    def test_unset_tls_options_load_with_any_keystoneauth1(self):
        conf = deploy.load_conf(directory=self.config_dir)
        self.assertEqual([], glance_conf.unsupported(conf))
        glance.ImageAPI(conf)

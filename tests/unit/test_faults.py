"""Faults and request ids: every response is traceable, every error JSON."""

import io
import re
from unittest import mock
import uuid

import webob
import webob.dec
import webob.exc

from compute_api.api import faults
from tests.unit import base
from tests.unit import fakes

REQ_ID = re.compile(r'^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-'
                    r'[89ab][0-9a-f]{3}-[0-9a-f]{12}$')


class TestRequestIds(base.APITestCase):

    def assertRequestIds(self, resp):
        rid = resp.headers['x-openstack-request-id']
        self.assertRegex(rid, REQ_ID)
        self.assertEqual(rid, resp.headers['x-compute-request-id'])
        return rid

    def test_every_kind_of_response_carries_request_ids(self):
        image = f'/v2.1/images/{uuid.uuid4()}'
        responses = [
            self.request(image),                                  # 204
            self.request(image, identity=None),                   # 401
            self.request(image, method='PUT'),                    # 405
            self.request('/v2.1/nothing'),                        # 404
            self.request(image, body=b'x' * 200000),              # 413
            self.request(image, headers={
                'OpenStack-API-Version': 'compute 9.9'}),         # 406
            self.request('/', method='GET', identity=None),
            self.request('/healthcheck', method='GET', identity=None),
        ]
        ids = {self.assertRequestIds(resp) for resp in responses}
        self.assertEqual(len(responses), len(ids))

    def test_valid_inbound_id_is_forwarded_to_glance_as_global_id(self):
        inbound = 'req-' + str(uuid.uuid4())
        resp = self.delete_image(
            headers={'X-OpenStack-Request-ID': inbound})
        self.assertEqual(204, resp.status_int)
        local = self.assertRequestIds(resp)
        self.assertNotEqual(inbound, local)
        sent = self.glance.requests[0].headers
        self.assertEqual(inbound, sent['X-OpenStack-Request-ID'])

    def test_without_inbound_id_the_local_id_is_the_global_id(self):
        resp = self.delete_image()
        sent = self.glance.requests[0].headers
        self.assertEqual(self.assertRequestIds(resp),
                         sent['X-OpenStack-Request-ID'])

    def test_invalid_inbound_id_is_not_forwarded(self):
        resp = self.delete_image(
            headers={'X-OpenStack-Request-ID': 'req-../../etc'})
        sent = self.glance.requests[0].headers
        self.assertEqual(self.assertRequestIds(resp),
                         sent['X-OpenStack-Request-ID'])


class TestFaultShapes(base.APITestCase):

    def test_oversized_body_is_413_json(self):
        resp = self.delete_image(body=b'x' * (114688 + 1))
        self.assertFault(resp, 413, 'overLimit')
        self.assertGlanceNotCalled()

    def test_oversized_body_is_413_fault_when_json_is_accepted(self):
        # tempest's clients send Accept: application/json
        resp = self.delete_image(body=b'x' * (114688 + 1),
                                 headers={'Accept': 'application/json'})
        self.assertFault(resp, 413, 'overLimit')
        self.assertGlanceNotCalled()

    def chunked_delete(self, body, identity=base.MEMBER, environ=None):
        """A DELETE whose body has no Content-Length (chunked encoding, as
        gunicorn hands it over: de-chunked in ``wsgi.input``, length
        unknown). ``body``: bytes, or the stream ``wsgi.input`` is."""
        req = webob.Request.blank(f'/v2.1/images/{uuid.uuid4()}',
                                  method='DELETE')
        req.environ['HTTP_TRANSFER_ENCODING'] = 'chunked'
        req.environ['wsgi.input'] = (io.BytesIO(body)
                                     if isinstance(body, bytes) else body)
        req.environ['wsgi.input_terminated'] = True
        req.environ.pop('CONTENT_LENGTH', None)
        if identity is not None:
            req.environ[fakes.IDENTITY_KEY] = identity
        req.environ.update(environ or {})
        return req.get_response(self.app)

    def test_oversized_chunked_body_is_413(self):
        self.assertIsNone(webob.Request.blank('/').content_length)
        resp = self.chunked_delete(b'x' * (114688 + 1))
        self.assertFault(resp, 413, 'overLimit')
        self.assertGlanceNotCalled()

    def test_the_transfer_coding_is_case_insensitive(self):
        # "Chunked" or a list of codings is chunked too: such a body over
        # the limit must not reach the delete
        for coding in ('Chunked', 'CHUNKED', 'gzip, chunked', ' chunked '):
            resp = self.chunked_delete(b'x' * (114688 + 1),
                                       environ={'HTTP_TRANSFER_ENCODING':
                                                coding})
            self.assertFault(resp, 413, 'overLimit')
        self.assertGlanceNotCalled()

    def test_oversized_chunked_body_is_413_before_authentication(self):
        resp = self.chunked_delete(b'x' * 200000, identity=None)
        self.assertFault(resp, 413, 'overLimit')

    def test_chunked_body_at_the_limit_is_accepted(self):
        resp = self.chunked_delete(b'x' * 114688)
        self.assertEqual(204, resp.status_int, resp.body)

    def test_unreadable_chunked_body_is_400(self):
        class Cut(io.RawIOBase):
            def read(self, size=-1):
                raise OSError('No more data')  # as gunicorn's NoMoreData
        resp = self.chunked_delete(Cut())
        self.assertFault(resp, 400, 'badRequest')
        self.assertGlanceNotCalled()

    def uwsgi_chunked_delete(self, chunks):
        """As uwsgi's http-socket hands a chunked body over: nothing in
        wsgi.input, the chunks from ``uwsgi.chunked_read()``."""
        def chunked_read():
            chunk = chunks.pop(0) if chunks else b''
            if isinstance(chunk, Exception):
                raise chunk
            return chunk
        patcher = mock.patch.dict(
            'sys.modules', {'uwsgi': mock.Mock(chunked_read=chunked_read)})
        patcher.start()
        self.addCleanup(patcher.stop)
        return self.chunked_delete(b'', environ={'uwsgi.version': b'2.0.31'})

    def test_oversized_chunked_body_under_uwsgi_is_413(self):
        resp = self.uwsgi_chunked_delete([b'x' * 10000] * 12)
        self.assertFault(resp, 413, 'overLimit')
        self.assertGlanceNotCalled()

    def test_chunked_body_under_uwsgi_at_the_limit_is_accepted(self):
        resp = self.uwsgi_chunked_delete([b'x' * 57344] * 2)
        self.assertEqual(204, resp.status_int, resp.body)

    def test_unreadable_chunked_body_under_uwsgi_is_400(self):
        resp = self.uwsgi_chunked_delete([b'x' * 100, OSError('timeout')])
        self.assertFault(resp, 400, 'badRequest')
        self.assertGlanceNotCalled()

    def test_body_at_the_limit_is_accepted(self):
        resp = self.delete_image(body=b'x' * 114688)
        self.assertEqual(204, resp.status_int)

    def test_fault_content_type_is_json_utf8(self):
        resp = self.request('/v2.1/nothing')
        self.assertEqual('application/json; charset=UTF-8',
                         resp.headers['Content-Type'])


class TestFaultWrapper(base.base.BaseTestCase):

    def _call(self, app, accept='text/html'):
        wrapped = faults.FaultWrapper(app)
        req = webob.Request.blank('/x', headers={'Accept': accept})
        return req.get_response(wrapped)

    def test_unexpected_exception_is_generic_500(self):
        def boom(environ, start_response):
            raise RuntimeError('secret detail in a traceback')
        resp = self._call(boom)
        self.assertEqual(500, resp.status_int)
        fault = resp.json['computeFault']
        self.assertEqual(faults.GENERIC_500, fault['message'])
        self.assertNotIn(b'secret', resp.body)
        self.assertNotIn(b'Traceback', resp.body)

    def test_a_library_layers_error_is_translated_by_its_status(self):
        # whatever its format: webob's HTML, text or JSON rendering (as
        # auth_token's 503 is rendered), or a JSON body of its own
        @webob.dec.wsgify
        def webob_error(req):
            return webob.exc.HTTPServiceUnavailable(
                explanation='<b>upstream</b>', headers={'Retry-After': '5'})

        @webob.dec.wsgify
        def own_json(req):
            return webob.Response(
                status=503, json_body={'serviceUnavailable': {'code': 503}},
                headers={'Retry-After': '5'})
        for app in (webob_error, own_json):
            for accept in ('text/html', 'application/json', 'text/plain'):
                resp = self._call(app, accept=accept)
                self.assertEqual(503, resp.status_int)
                self.assertEqual(
                    {'serviceUnavailable': {
                        'code': 503,
                        'message': faults.GENERIC_MESSAGES[503]}},
                    resp.json)
                self.assertEqual('5', resp.headers['Retry-After'])

    def test_raised_webob_error_is_translated(self):
        def raiser(environ, start_response):
            raise webob.exc.HTTPRequestEntityTooLarge()
        for accept in ('text/html', 'application/json'):
            resp = self._call(raiser, accept=accept)
            self.assertEqual(413, resp.status_int)
            self.assertIn('overLimit', resp.json)

    def test_the_services_own_answers_pass_unchanged(self):
        @webob.dec.wsgify
        def service(req):
            req.environ[faults.SERVED_KEY] = True
            return faults.fault_response(409, 'in use')
        resp = self._call(service)
        self.assertEqual({'conflictingRequest': {'code': 409,
                                                 'message': 'in use'}},
                         resp.json)

    def test_auth_tokens_401_passes_unchanged(self):
        body = b'{"error": {"code": 401}}'

        @webob.dec.wsgify
        def json_401(req):
            return webob.Response(status=401, body=body,
                                  content_type='application/json')
        resp = self._call(json_401)
        self.assertEqual(body, resp.body)

    def test_a_raised_fault_answers_its_response(self):
        # http_error: webob.exc.HTTPException(message, wsgi_response)
        resp = webob.Request.blank('/').get_response(
            faults.http_error(400, 'nope'))
        self.assertEqual({'badRequest': {'code': 400, 'message': 'nope'}},
                         resp.json)

    def test_fault_names(self):
        for status, name in ((400, 'badRequest'), (401, 'unauthorized'),
                             (403, 'forbidden'), (404, 'itemNotFound'),
                             (405, 'badMethod'), (409, 'conflictingRequest'),
                             (413, 'overLimit'), (415, 'badMediaType'),
                             (503, 'serviceUnavailable'),
                             (406, 'computeFault'), (500, 'computeFault')):
            resp = faults.fault_response(status, 'm')
            self.assertEqual({name: {'code': status, 'message': 'm'}},
                             resp.json)

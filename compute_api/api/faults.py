"""Compute fault rendering: the one place error responses are built.

Every error the service answers with is JSON. The service's own layers
(from the context middleware down) answer Compute faults,
``{"<faultName>": {"code": <status>, "message": "<text>"}}``, and say so in
the WSGI environ (:data:`SERVED_KEY`). An error answered before them, by a
library's middleware, is rewritten by its status into a Compute fault with
a generic message, whatever its body: this decides by who answered, never
by reading the body. The one exception is a 401, which only
keystonemiddleware's ``auth_token`` answers there: its documented JSON body
(``{"error": {"code": 401, "title": ..., "message": ...}}``) reaches the
client as it does from every OpenStack API.
"""

import logging
from urllib import parse

from oslo_serialization import jsonutils
import webob
import webob.dec
import webob.exc

LOG = logging.getLogger(__name__)

FAULT_NAMES = {
    400: 'badRequest',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'itemNotFound',
    405: 'badMethod',
    409: 'conflictingRequest',
    413: 'overLimit',
    415: 'badMediaType',
    501: 'notImplemented',  # HAProxy's own (haproxy.cfg.example)
    503: 'serviceUnavailable',
}
DEFAULT_FAULT_NAME = 'computeFault'
# Set in the environ by the service's own layers: the response is theirs.
SERVED_KEY = 'compute_api.served'
JSON_CONTENT_TYPE = 'application/json; charset=UTF-8'

# Messages of the errors that a library's layer answers (so that no HTML
# or foreign body leaks through); other statuses get a general one.
GENERIC_MESSAGES = {
    400: 'The request could not be understood.',
    404: 'The resource could not be found.',
    413: 'The request body is larger than this service accepts.',
    503: 'The service is unavailable. Try again later.',
}
GENERIC_500 = ('An unexpected error prevented the request from completing. '
               'The request id identifies it in the service logs.')

# Headers of a foreign error response that survive its translation.
_KEPT_HEADERS = ('Allow', 'Retry-After')


def fault_response(status, message, headers=None):
    """Build the JSON fault response for ``status`` with ``message``."""
    name = FAULT_NAMES.get(status, DEFAULT_FAULT_NAME)
    body = {name: {'code': status, 'message': message}}
    resp = webob.Response(status=status, body=jsonutils.dump_as_bytes(body))
    resp.headers['Content-Type'] = JSON_CONTENT_TYPE
    resp.headers.update(headers or {})
    return resp


def http_error(status, message, **headers):
    """A raisable webob HTTP exception that answers the Compute fault of
    ``status`` with ``message`` (webob's ``HTTPException(message,
    wsgi_response)``; a ``wsgify`` layer answers it as it is)."""
    return webob.exc.HTTPException(
        message, fault_response(status, message, headers))


def printable_path(environ):
    """The request path as it was on the wire, safe to log: anything but
    unreserved and sub-delimiter characters is percent-encoded, so control
    characters and line breaks can never forge a log line."""
    raw = environ.get('PATH_INFO', '').encode('latin-1', 'replace')
    return parse.quote(raw, safe="/:@!$&'()*+,;=~%")


class FaultWrapper:
    """Middleware: no exception and no foreign error leaves the service.

    Unexpected exceptions become a generic 500 ``computeFault`` (with the
    traceback in the log, never in the response); HTTP errors raised or
    answered by a library's layer (the body size limiter's 413,
    ``auth_token``'s 503 when Keystone cannot be reached) become the
    Compute fault of their status.
    """

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        try:  # no route has a path that is not UTF-8: answered before
            # any layer decodes it
            req.environ.get('PATH_INFO', '').encode('latin-1').decode()
        except UnicodeError:
            return fault_response(404, GENERIC_MESSAGES[404])
        try:
            resp = req.get_response(self.application)
        except webob.exc.HTTPException as exc:
            resp = req.get_response(exc)
        except Exception:
            LOG.exception('Unexpected error while serving %s %s',
                          req.method, printable_path(req.environ))
            return fault_response(500, GENERIC_500)
        status = resp.status_int
        if status < 400 or status == 401 or req.environ.get(SERVED_KEY):
            return resp
        message = GENERIC_MESSAGES.get(status, GENERIC_500 if status >= 500
                                       else 'The request failed.')
        return fault_response(status, message, {
            h: resp.headers[h] for h in _KEPT_HEADERS if h in resp.headers})

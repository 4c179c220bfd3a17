"""Compute fault rendering: the one place error responses are built.

Every error the service answers with is JSON. Its own errors, and those of
middleware that does not answer JSON, are Compute faults of the form
``{"<faultName>": {"code": <status>, "message": "<text>"}}``; any other
JSON error body (but webob's own rendering) is passed on as it is, which is
how keystonemiddleware's ``auth_token`` 401 (``{"error": {"code": 401,
"title": ..., "message": ...}}``) reaches the client, as it does from every
OpenStack API.
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
    429: 'overLimit',
    501: 'notImplemented',
    503: 'serviceUnavailable',
}
DEFAULT_FAULT_NAME = 'computeFault'
JSON_CONTENT_TYPE = 'application/json; charset=UTF-8'

# Messages for error responses produced by middleware that does not speak
# the Compute fault format (so that no HTML or foreign body leaks through).
GENERIC_MESSAGES = {
    400: 'The request could not be understood.',
    401: 'Authentication required.',
    403: 'Access was denied to this resource.',
    404: 'The resource could not be found.',
    405: 'The method is not allowed for this resource.',
    411: 'A Content-Length header is required.',
    413: 'The request body is larger than this service accepts.',
    414: 'The request URI is too long.',
    415: 'The request media type is not supported.',
    503: 'The service is unavailable. Try again later.',
}
GENERIC_500 = ('An unexpected error prevented the request from completing. '
               'The request id identifies it in the service logs.')

# Headers of a foreign error response that survive its translation.
_KEPT_HEADERS = ('Allow', 'WWW-Authenticate', 'Retry-After')


def fault_response(status, message, headers=None):
    """Build the JSON fault response for ``status`` with ``message``."""
    name = FAULT_NAMES.get(status, DEFAULT_FAULT_NAME)
    body = {name: {'code': status, 'message': message}}
    resp = webob.Response(status=status, body=jsonutils.dump_as_bytes(body))
    resp.headers['Content-Type'] = JSON_CONTENT_TYPE
    for key, value in (headers or {}).items():
        resp.headers[key] = value
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


def _path_is_utf8(environ):
    try:
        environ.get('PATH_INFO', '').encode('latin-1').decode('utf-8')
    except UnicodeError:
        return False
    return True


def _is_json(resp):
    return (resp.content_type or '').endswith('json')


def _is_webob_error(resp):
    """webob's own rendering of an HTTP error, which it makes JSON when
    the client accepts JSON (as tempest's clients do):
    ``{"code": "<status> <reason>", "title": ..., "message": ...}``, the
    message with HTML residue."""
    try:
        body = resp.json_body
    except ValueError:
        return False
    return (isinstance(body, dict) and set(body) == {'code', 'title',
                                                     'message'}
            and isinstance(body['code'], str))


def _translate(status, headers):
    """The Compute fault for an error of ``status`` that some layer
    answered in another format; a few of its headers are kept."""
    message = GENERIC_MESSAGES.get(status, GENERIC_500 if status >= 500
                                   else 'The request failed.')
    kept = {h: headers[h] for h in _KEPT_HEADERS if h in headers}
    return fault_response(status, message, kept)


class FaultWrapper:
    """Middleware: no exception and no non-JSON error leaves the service.

    Unexpected exceptions become a generic 500 ``computeFault`` (with the
    traceback in the log, never in the response); HTTP errors raised or
    returned by inner middleware (for example the body size limiter) are
    rendered as Compute faults.
    """

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        if not _path_is_utf8(req.environ):
            # No route can match it; answered before any layer decodes it.
            return fault_response(404, GENERIC_MESSAGES[404])
        try:
            resp = req.get_response(self.application)
        except webob.exc.WSGIHTTPException as exc:  # webob's own errors
            return _translate(exc.code, exc.headers)
        except webob.exc.HTTPException as exc:  # a fault (http_error)
            return req.get_response(exc)
        except Exception:
            LOG.exception('Unexpected error while serving %s %s',
                          req.method, printable_path(req.environ))
            return fault_response(500, GENERIC_500)
        if resp.status_int >= 400 and (not _is_json(resp)
                                       or _is_webob_error(resp)):
            # e.g. auth_token's 503, raised as a webob error and rendered
            # by webob as JSON for a client that accepts it
            return _translate(resp.status_int, resp.headers)
        return resp

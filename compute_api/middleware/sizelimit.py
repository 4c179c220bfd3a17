"""The request body size limit, for bodies with and without a length.

oslo.middleware's limiter refuses a ``Content-Length`` over
``[oslo_middleware] max_request_body_size`` at once, but a chunked body
(no ``Content-Length``) only fails when something reads past the limit, and
nothing reads the body of a delete: such a body went through whatever its
size. Here a body without a length is read (the limit plus one byte at
most) before the rest of the pipeline, so it is refused 413 as early as one
with a length, before authentication.

gunicorn hands a chunked body over de-chunked in ``wsgi.input``; uwsgi's
``http-socket`` does not (``wsgi.input`` is empty) and offers its own
reader of the chunks, ``uwsgi.chunked_read()``, which is used under uwsgi.
"""

from oslo_middleware import sizelimit
import webob.dec

from compute_api.api import faults


def _read_chunked(environ, size):
    """Up to ``size`` bytes of a chunked request body (a few more under
    uwsgi, which hands over whole chunks); 400 when it cannot be read."""
    if 'uwsgi.version' in environ:
        import uwsgi  # noqa: PLC0415 (only there under uwsgi)
        read = uwsgi.chunked_read
    else:
        stream = environ['wsgi.input']

        def read():
            return stream.read(size - received)
    parts = []
    received = 0
    while received < size:
        try:
            chunk = read()
        except Exception:  # noqa: BLE001
            # What the server raises for a malformed chunk, a body cut
            # short or a client that stopped sending (gunicorn has its own
            # exception classes for each): all the client's body.
            raise faults.http_error(
                400, 'The chunked request body could not be read.')
        if not chunk:
            break
        parts.append(chunk)
        received += len(chunk)
    return b''.join(parts)


class RequestBodySizeLimiter(sizelimit.RequestBodySizeLimiter):

    def __init__(self, application, conf):
        super().__init__(application, conf)  # registers the option in conf
        self.service_conf = conf

    @webob.dec.wsgify
    def __call__(self, req):
        # transfer-coding names are case-insensitive (RFC 9112)
        codings = req.headers.get('Transfer-Encoding', '').lower()
        chunked = 'chunked' in (c.strip() for c in codings.split(','))
        if req.content_length is None and chunked:
            limit = self.service_conf.oslo_middleware.max_request_body_size
            body = _read_chunked(req.environ, limit + 1)
            if len(body) > limit:
                raise faults.http_error(413, faults.GENERIC_MESSAGES[413])
            req.body = body  # now with a Content-Length
        # oslo.middleware's 413 becomes a Compute fault in the fault wrapper
        return super().__call__(req)

"""The request body size limit, for bodies with and without a length.

oslo.middleware's limiter refuses a ``Content-Length`` over
``[oslo_middleware] max_request_body_size`` at once, but a chunked body
(no ``Content-Length``) only fails when something reads past the limit, and
nothing reads the body of a delete: such a body went through whatever its
size. Here a body without a length is read (the limit plus one byte at
most) before the rest of the pipeline, so it is refused 413 as early as one
with a length, before authentication.
"""

from oslo_middleware import sizelimit
import webob.dec
import webob.exc


class RequestBodySizeLimiter(sizelimit.RequestBodySizeLimiter):

    @webob.dec.wsgify
    def __call__(self, req):
        chunked = 'chunked' in req.headers.get('Transfer-Encoding', '')
        if req.content_length is None and chunked:
            # the WSGI server hands the body over de-chunked
            limit = self._conf_get('max_request_body_size')
            body = req.environ['wsgi.input'].read(limit + 1)
            if len(body) > limit:
                raise webob.exc.HTTPRequestEntityTooLarge()
            req.body = body  # now with a Content-Length
        return super().__call__(req)

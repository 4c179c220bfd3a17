"""Domain errors of compute-api.

Each error carries an HTTP status and a message built from ``msg_fmt``; the
API layer turns them into Compute faults in one place
(:mod:`compute_api.api.faults`).
"""

from urllib import parse

# Characters of client input that messages show as they are; everything
# else (markup, quotes, control characters, non-ASCII) is percent-encoded.
_SHOWN_SAFE = "-._~:@!$&()*+,;= "


def shown(value, limit=64):
    """Client-supplied text made safe to put in a message: percent-encoded
    where it could be mistaken for markup or break a line, and bounded.

    Paths and headers come from the WSGI environ as bytes held in a latin-1
    string; UTF-8 text there is shown as the client sent it (``%C3%A9`` for
    an e acute), not encoded twice.
    """
    try:
        value = value.encode('latin-1').decode('utf-8')
    except UnicodeError:
        pass  # not from the environ, or not UTF-8: shown as it is
    text = parse.quote(value, safe=_SHOWN_SAFE)
    return text if len(text) <= limit else text[:limit] + '...'


class ComputeAPIError(Exception):
    """Base class: a message template and the status it maps to."""

    msg_fmt = 'An unknown error occurred.'
    code = 500

    def __init__(self, **kwargs):
        super().__init__(self.msg_fmt % kwargs)


class ProjectMismatch(ComputeAPIError):
    msg_fmt = ("Malformed request URL: the project '%(url_project)s' in the "
               "URL does not match the token's project %(token_project)s.")
    code = 400


class ImageNotAuthorized(ComputeAPIError):
    msg_fmt = ('The Image service rejected the credentials of this request; '
               'authenticate again.')
    code = 401


class PolicyNotAuthorized(ComputeAPIError):
    msg_fmt = 'Policy does not allow %(action)s to be performed.'
    code = 403


class ImageForbidden(ComputeAPIError):
    msg_fmt = 'Not allowed to delete image %(image_id)s.'
    code = 403


class NotFound(ComputeAPIError):
    msg_fmt = 'Resource could not be found.'
    code = 404


class ImageNotFound(NotFound):
    msg_fmt = 'Image %(image_id)s could not be found.'


class ImageInUse(ComputeAPIError):
    msg_fmt = 'Image %(image_id)s is in use and cannot be deleted now.'
    code = 409


class PolicyUnavailable(ComputeAPIError):
    msg_fmt = ('The authorization policy of this service could not be '
               'loaded, so the request was refused. Try again later.')
    code = 503


class ImageServiceUnavailable(ComputeAPIError):
    msg_fmt = ('The Image service is unavailable or did not answer in time; '
               'the image may not have been deleted. Try again later.')
    code = 503


class IdentityServiceUnavailable(ComputeAPIError):
    msg_fmt = ('The Identity service did not issue the token this service '
               'needs to call the Image service; the image was not deleted. '
               'Try again later.')
    code = 503

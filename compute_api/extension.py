"""The Delete Image call as a Paste filter inside a Nova-like compute API
(doc/source/nova-extension.rst): in Nova's ``api-paste.ini``, right after
``keystonecontext``::

    [filter:compute_api_images]
    paste.filter_factory = compute_api.extension:images_filter_factory
    config_dir = /etc/compute_api

It serves ``DELETE [/{project_id}]/images/{image_id}`` below the version
root (``/v2.1``, or the legacy ``/v2``; in ``SCRIPT_NAME`` or still in
``PATH_INFO``) at microversions 2.1 to 2.35 with the standalone pipeline's
own router, controller, policy and Glance adapter, built from
``config_dir``; the host's ``auth_token`` has already authenticated it. An
images path with a method override or a query that is not UTF-8 is
refused (400); every other request goes to the host unchanged.
"""

import logging
import os
import re
from urllib import parse

import webob
import webob.dec
import webob.exc

from compute_api import deploy
from compute_api import exception
from compute_api import policy
from compute_api.api import faults
from compute_api.api import microversion
from compute_api.api import router as router_mod
from compute_api.middleware import context as context_mw

LOG = logging.getLogger(__name__)

# The version roots a host serves the call under; the legacy one ignores
# the microversion headers of requests and answers without them, as the
# host's legacy v2 compatible pipeline does.
LEGACY_ROOT = '/v2'
_ROOTS = (router_mod.VERSION_ROOT, LEGACY_ROOT)
_RESPONSE_VERSION_HEADERS = (microversion.STANDARD_HEADER,
                             microversion.LEGACY_HEADER)
# Set in the environ the router serves: the request came through LEGACY_ROOT.
LEGACY_KEY = 'compute_api.legacy_v2'
# A path the host could route to its images API: any that names images, in
# any case. Requests there must carry no method override (see _ambiguity).
_IMAGES_PATH = re.compile(r'images', re.I)
_OVERRIDE = b'_method'
_OVERRIDE_REFUSED = ('A method override (_method) is not accepted on the '
                     'images API; send the request with its own method.')

# Pieces built per configuration directory: a host loads one filter per
# pipeline (Nova has two), and they share the enforcer and Glance session.
_BUILT = {}


class ImagesFilter:
    """Serves the Delete Image call; passes every other request on."""

    def __init__(self, application, router, enforcer):
        self.application = application
        self.router = router
        self.images = faults.FaultWrapper(
            context_mw.ContextMiddleware(router, enforcer))
        self.legacy_images = _without_version_headers(self.images)

    def __call__(self, environ, start_response):
        if _IMAGES_PATH.search(environ.get('PATH_INFO', '')):
            refusal = _ambiguity(environ)
            if refusal:
                LOG.info('Refused %s %s: %s', environ.get('REQUEST_METHOD'),
                         exception.shown(environ.get('PATH_INFO', ''), 200),
                         refusal)
                return faults.fault_response(400, refusal)(
                    environ, start_response)
        served = self.served_environ(environ)
        if served is None:
            return self.application(environ, start_response)
        if served[LEGACY_KEY]:
            return self.legacy_images(served, start_response)
        return self.images(served, start_response)

    def served_environ(self, environ):
        """The environ the router serves this request with (a copy, the
        version root at the start of ``PATH_INFO``, ``LEGACY_KEY`` set), or
        None when the request is the host's. Without a version root in
        front of ``PATH_INFO``, the call is matched on it as it is, as the
        host's router sees it."""
        if environ.get('REQUEST_METHOD', '').upper() != 'DELETE':
            return None
        script_name, root, path = _split_root(environ.get('SCRIPT_NAME', ''),
                                              environ.get('PATH_INFO', ''))
        served = dict(environ, SCRIPT_NAME=script_name,
                      PATH_INFO=router_mod.VERSION_ROOT + path,
                      REQUEST_METHOD='DELETE')
        served[LEGACY_KEY] = legacy = root == LEGACY_ROOT
        if legacy:
            for key in microversion.ENVIRON_KEYS:
                served.pop(key, None)
        if router_mod.CONTROL_CHARS.search(path):
            # No route has them (the router answers 404), but the host's
            # routes, like ours before, may match '{id}\n' as '{id}'.
            return served if _IMAGES_PATH.search(path) else None
        match = self.router.match(served)
        if match is None or match['controller'] is None:
            return None
        try:
            version = microversion.from_request(webob.Request(served))
        except webob.exc.HTTPException:
            return None
        if version > microversion.MAX_IMAGE_PROXY_VERSION:
            return None
        return served


def _ambiguity(environ):
    """Why the host might act on this request with another method than
    its own, or None.

    Routes' middleware (Nova's router) lets a ``_method`` parameter of the
    query, or of a posted form's body, stand for the request's method, read
    with webob's parser; the filter does not read it the way the host would
    but refuses any parameter name containing ``_method`` (in any case,
    percent-encoded or not, ``&`` or ``;`` separating parameters) and, in a
    multipart form, the text anywhere. A query that is not UTF-8 is refused
    too, since parsers disagree on what it says. No Compute client sends
    either.
    """
    query = environ.get('QUERY_STRING', '').encode('latin-1', 'replace')
    if _names_an_override(query):
        return _OVERRIDE_REFUSED
    try:
        parse.unquote_to_bytes(query).decode('utf-8')
    except UnicodeDecodeError:
        return 'The query string is not valid UTF-8.'
    media_type = environ.get('CONTENT_TYPE', '').split(';')[0].lower()
    if 'form-urlencoded' in media_type or 'multipart' in media_type:
        body = webob.Request(environ).body  # kept readable for the host
        if ('multipart' in media_type and _OVERRIDE in body.lower()
                or _names_an_override(body)):
            return _OVERRIDE_REFUSED
    return None


def _names_an_override(form):
    """Whether a parameter name of an urlencoded ``form`` (bytes) contains
    ``_method``, in any case and encoding."""
    for field in re.split(rb'[&;]', form):
        name = parse.unquote_to_bytes(field.split(b'=', 1)[0])
        if _OVERRIDE in name.lower():
            return True
    return False


def _split_root(script_name, path):
    """(SCRIPT_NAME before the root, the root, the path below it); the root
    is None when the request is not below a known version root."""
    for root in _ROOTS:
        if script_name.endswith(root):
            return script_name[:-len(root)], root, path
    for root in _ROOTS:
        if path.startswith(root + '/'):
            return script_name, root, path[len(root):]
    return script_name, None, path


def _without_version_headers(app):
    """``app`` answering without microversion headers (legacy root)."""
    @webob.dec.wsgify
    def legacy(req):
        resp = req.get_response(app)
        for name in _RESPONSE_VERSION_HEADERS:
            resp.headers.pop(name, None)
        resp.vary = [value for value in resp.vary or ()
                     if value not in _RESPONSE_VERSION_HEADERS] or None
        return resp
    return legacy


def _pieces(directory):
    """The router and the policy enforcer the filter serves with."""
    directory = os.path.abspath(directory)
    if directory not in _BUILT:
        conf = deploy.conf_for_directory(directory, library_defaults=False)
        if conf.debug:
            logging.getLogger('compute_api').setLevel(logging.DEBUG)
        _BUILT[directory] = (router_mod.build_router(conf),
                             policy.Enforcer(conf))
        LOG.info('Serving DELETE images/{image_id} at microversions '
                 '%s-%s with the configuration in %s',
                 microversion.to_string(microversion.MIN_VERSION),
                 microversion.to_string(
                     microversion.MAX_IMAGE_PROXY_VERSION),
                 directory)
    return _BUILT[directory]


def images_filter_factory(global_conf, **local_conf):
    """Paste filter factory; ``config_dir`` names the directory of
    ``compute_api.conf`` (default ``$OS_COMPUTE_API_CONFIG_DIR``, then
    ``/etc/compute_api``).

    :raises compute_api.deploy.ConfigurationError: when that file is
        missing or unreadable. (A policy file that cannot be used does not
        stop it loading: the deletes it serves are answered 503 until the
        file is corrected, as in the standalone service.)
    """
    directory = local_conf.get(deploy.CONFIG_DIR_OPTION) or deploy.config_dir()
    router, enforcer = _pieces(directory)
    return lambda app: ImagesFilter(app, router, enforcer)

"""The Glance v2 adapter: delete an image as the calling user.

One keystoneauth1 session (and so one connection pool) is shared by every
request a worker serves; each call uses the caller's own token and service
catalog (keystonemiddleware's ``keystone.token_auth`` plugin) and forwards
the global request id. That plugin also sends this service's own token as
``X-Service-Token``, unless ``[glance] send_service_token`` is false. As the
session serves every user, it keeps no cookies: whatever a Glance (or a load
balancer in front of it) sets for one user must never be sent with another
user's request.

The ``[glance]`` retries are made here, so that ``total_timeout`` bounds
them; every Glance outcome becomes a domain error, never a raw answer.
"""

from http import cookiejar
from importlib import metadata
import logging
import re
import time
from urllib import parse

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1.identity import access as ks_access
from keystoneauth1.loading import adapter as ks_adapter_loading

from compute_api import deploy
from compute_api import exception
from compute_api.conf import glance as glance_conf

LOG = logging.getLogger(__name__)

# Glance only ever creates images whose ids have this form; anything else is
# unknown to it (it answers 404), so such ids are answered without a call.
_IMAGE_ID_RE = re.compile(
    r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
    r'[0-9a-fA-F]{12}')
_DOUBLE_DELETE = 'deleted to deleted'


def image_path(image_id):
    """The Glance path of an image: the id is always one encoded segment."""
    return '/v2/images/' + parse.quote(image_id, safe='')


class ImageAPI:
    """Calls Glance v2 on behalf of the user in a request context.

    ``clock`` and ``sleep`` are ``time.monotonic`` and ``time.sleep``
    unless a test gives its own.
    """

    def __init__(self, conf, clock=time.monotonic, sleep=time.sleep):
        unsupported = glance_conf.unsupported(conf)
        if unsupported:
            raise deploy.ConfigurationError(
                f'[glance] {", ".join(unsupported)} cannot be used with the '
                f'installed keystoneauth1 {metadata.version("keystoneauth1")}'
                ': upgrade it or remove the option.')
        self._session = ks_loading.load_session_from_conf_options(
            conf, 'glance', app_name='compute-api')
        self._session.session.cookies.set_policy(
            cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # none at all
        glance = conf.glance
        self._adapter_kwargs = {}
        # (its retry options are overridden call by call: see _attempts)
        ks_adapter_loading.process_conf_options(glance, self._adapter_kwargs)
        self._timeout = glance.timeout
        self._retries = {
            'connect': (glance.connect_retries or 0,
                        glance.connect_retry_delay or 0),
            'status': (glance.status_code_retries or 0,
                       glance.status_code_retry_delay or 0)}
        self._retriable = set(glance.retriable_status_codes or ())
        self._total_timeout = glance.total_timeout
        self._send_service_token = glance.send_service_token
        self._clock = clock
        self._sleep = sleep

    def _auth(self, context):
        """The caller's credentials, with or without the service token."""
        plugin = context.user_auth_plugin
        if self._send_service_token or plugin is None:
            return plugin
        # Only the caller's token and catalog: keystonemiddleware's plugin
        # would add this service's token to every request.
        return ks_access.AccessInfoPlugin(plugin.get_access(self._session))

    def _authenticate(self, adapter, image_id):
        """Get the headers that authenticate the call before making it, so
        that a failure of the Identity service (giving this service its own
        token, sent as ``X-Service-Token``) is reported as one and not as a
        failure of the Image service. The plugin keeps the token it got:
        the call itself does not ask Keystone again."""
        try:
            self._session.get_auth_headers(auth=adapter.auth)
        except ks_exc.ClientException as exc:
            LOG.warning('Identity service failed to issue the service token '
                        'for the Image service, deleting image %s: %s: %s',
                        image_id, exc.__class__.__name__, str(exc)[:300])
            raise exception.IdentityServiceUnavailable()

    def _attempts(self, adapter, path, deadline):
        """DELETE ``path`` with the configured retries, none of them
        starting after ``deadline``; the last answer, or the last
        connection failure raised."""
        left = dict(self._retries)
        while True:
            timeout = deadline - self._clock()
            try:
                # A 401 is final: sending the same token again (keystoneauth
                # would, once) cannot change Glance's answer.
                resp = adapter.delete(
                    path, raise_exc=False, redirect=False,
                    allow_reauth=False, connect_retries=0,
                    status_code_retries=0,
                    timeout=min(timeout, self._timeout or timeout),
                    headers={'Accept': 'application/json'})
                kind = 'status' if resp.status_code in self._retriable \
                    else None
            except ks_exc.RetriableConnectionFailure as exc:
                kind, resp = 'connect', exc
            if kind is None or left[kind][0] <= 0:
                break
            count, delay = left[kind]
            left[kind] = count - 1, delay
            LOG.info('Image service attempt failed (%s); retrying in %s s',
                     getattr(resp, 'status_code', resp), delay)
            self._sleep(max(0, min(delay, deadline - self._clock())))
            if self._clock() >= deadline:
                LOG.warning('No attempt left within [glance] total_timeout '
                            '(%s s)', self._total_timeout)
                break
        if isinstance(resp, Exception):
            raise resp
        return resp

    def delete(self, context, image_id):
        """Delete ``image_id``; raise a domain error unless Glance did."""
        if not _IMAGE_ID_RE.fullmatch(image_id):
            raise exception.ImageNotFound(image_id=exception.shown(image_id))
        adapter = ks_adapter.Adapter(
            self._session, auth=self._auth(context),
            global_request_id=context.global_id, logger=LOG,
            **self._adapter_kwargs)
        self._authenticate(adapter, image_id)
        # the time on the Image service, from here (the Identity service's
        # time is bounded by its own timeouts)
        deadline = self._clock() + self._total_timeout
        try:
            resp = self._attempts(adapter, image_path(image_id), deadline)
        except ks_exc.ClientException as exc:
            # keystoneauth's message names the URL that failed
            LOG.warning('Image service unreachable deleting image %s: '
                        '%s: %s', image_id, exc.__class__.__name__,
                        str(exc)[:300])
            raise exception.ImageServiceUnavailable()
        _check_response(resp, image_id)


def _check_response(resp, image_id):
    status = resp.status_code
    if 200 <= status < 300:
        return
    glance_id = resp.headers.get('x-openstack-request-id', '-')
    if status == 404 or (status == 400 and _DOUBLE_DELETE in resp.text):
        raise exception.ImageNotFound(image_id=image_id)
    if status == 403:
        raise exception.ImageForbidden(image_id=image_id)
    if status == 409:
        raise exception.ImageInUse(image_id=image_id)
    LOG.warning('Image service answered %d deleting image %s '
                '(Glance request id %s)', status, image_id, glance_id)
    if status == 401:
        raise exception.ImageNotAuthorized()
    raise exception.ImageServiceUnavailable()

"""The Glance v2 adapter: delete an image as the calling user.

One keystoneauth1 session (and so one connection pool) is shared by every
request a worker serves; each call uses the caller's own token and service
catalog (keystonemiddleware's ``keystone.token_auth`` plugin) and forwards
the global request id. That plugin also sends this service's own token as
``X-Service-Token``, unless ``[glance] send_service_token`` is false. As the
session serves every user, it keeps no cookies: whatever a Glance (or a load
balancer in front of it) sets for one user must never be sent with another
user's request. Each delete has ``[glance] total_timeout`` in all, retries
included (:mod:`compute_api.image.deadline`).

Every Glance outcome is translated into a domain error here, so that
nothing Glance answers, and no way it fails, reaches the client raw.
"""

from http import cookiejar
import json
import logging
import re
from urllib import parse

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1.identity import access as ks_access
from keystoneauth1.loading import adapter as ks_adapter_loading
import requests

from compute_api import exception
from compute_api.image import deadline

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


# Endpoints whose environment settings a worker keeps at most (one Glance
# in practice, or one per region of the callers' catalogs).
_ENVIRONMENT_ENDPOINTS = 64
# Service catalogs whose Glance endpoint a worker keeps at most (catalogs
# differ between projects only where endpoints are filtered per project).
_CATALOG_ENDPOINTS = 64


class _Session(requests.Session):
    """A requests session that reads the environment once per endpoint.

    requests looks up the proxy environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``) and the CA bundle variables
    (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) before every request: it
    reads the whole process environment twice, about 0.1 ms per Glance
    call. Their result depends only on the environment, the endpoint
    (scheme, host and port: ``NO_PROXY`` matches hosts, never paths) and
    the request's own proxies, stream, verify and cert settings, so it is
    resolved once per endpoint and settings and then reused. The
    environment is read when a worker first calls an endpoint, so the
    variables apply as before but a change of them takes a restart, like
    any setting of the service.
    """

    def __init__(self):
        super().__init__()
        self._environment = {}

    def merge_environment_settings(self, url, proxies, stream, verify,
                                   cert):
        if not self.trust_env:
            return super().merge_environment_settings(
                url, proxies, stream, verify, cert)
        parts = parse.urlsplit(url)
        key = (parts.scheme, parts.netloc,
               None if proxies is None else tuple(sorted(proxies.items())),
               stream, verify, cert)
        try:
            settings = self._environment.get(key)
        except TypeError:  # a setting that cannot be a key: not kept
            return super().merge_environment_settings(
                url, proxies, stream, verify, cert)
        if settings is None:
            # requests adds the environment's proxies to the dict it is
            # given: a copy, so that the key stays what the caller sent
            settings = super().merge_environment_settings(
                url, None if proxies is None else dict(proxies), stream,
                verify, cert)
            if len(self._environment) >= _ENVIRONMENT_ENDPOINTS:
                self._environment.clear()
            self._environment[key] = settings
        # a copy: nothing done with one request's settings reaches another
        return dict(settings, proxies=dict(settings['proxies']))


def _ignore_retry_after(resp, *args, **kwargs):
    """keystoneauth sleeps for as long as a Retry-After header says before
    retrying, without a cap; dropping the header keeps the wait to the
    configured ``status_code_retry_delay`` and so within its bound."""
    resp.headers.pop('Retry-After', None)
    return resp


class ImageAPI:
    """Calls Glance v2 on behalf of the user in a request context."""

    def __init__(self, conf):
        http = _Session()
        http.hooks['response'].append(_ignore_retry_after)
        http.cookies.set_policy(cookiejar.DefaultCookiePolicy(
            allowed_domains=[]))  # accept no cookie, send none
        transport = deadline.DeadlineAdapter(
            tls_ciphers=conf.glance.tls_ciphers,
            tls_min_version=conf.glance.tls_min_version)
        for prefix in ('https://', 'http://'):
            http.mount(prefix, transport)
        self._session = ks_loading.load_session_from_conf_options(
            conf, 'glance', app_name='compute-api', session=http)
        self._adapter_kwargs = {}
        ks_adapter_loading.process_conf_options(
            conf.glance, self._adapter_kwargs)
        self._total_timeout = conf.glance.total_timeout
        self._send_service_token = conf.glance.send_service_token
        self._endpoints = {}

    def _auth(self, context):
        """The caller's credentials, with or without the service token."""
        plugin = context.user_auth_plugin
        if self._send_service_token or plugin is None:
            return plugin
        # Only the caller's token and catalog: keystonemiddleware's plugin
        # would add this service's token to every request.
        return ks_access.AccessInfoPlugin(plugin.get_access(self._session))

    def _adapter(self, context):
        return ks_adapter.Adapter(
            self._session, auth=self._auth(context),
            global_request_id=context.global_id, logger=LOG,
            **self._adapter_kwargs)

    def _url(self, adapter, image_id):
        """The image's URL at the Glance endpoint of the caller's catalog.

        keystoneauth looks the endpoint up in the catalog on every request,
        copying the whole catalog each time (about a tenth of a worker's
        time per delete). The endpoint depends only on the catalog and on
        this service's [glance] options, so keystoneauth's answer is kept
        per catalog (its content, not the token it came with: a token
        validated again may bring a changed catalog). With
        ``endpoint_override``, or when the caller's plugin has no catalog,
        the path is left to keystoneauth as it is.
        """
        path = image_path(image_id)
        if adapter.endpoint_override or adapter.auth is None:
            return path
        access = adapter.auth.get_access(self._session)
        if access is None or not access.has_service_catalog():
            return path
        key = json.dumps(access.service_catalog.catalog)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            endpoint = adapter.get_endpoint(allow=adapter.allow)
            if not endpoint:
                return path  # keystoneauth's own EndpointNotFound follows
            if len(self._endpoints) >= _CATALOG_ENDPOINTS:
                self._endpoints.clear()
            self._endpoints[key] = endpoint
        # joined as keystoneauth joins an endpoint and a path
        return '{}/{}'.format(endpoint.rstrip('/'), path.lstrip('/'))

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

    def delete(self, context, image_id):
        """Delete ``image_id``; raise a domain error unless Glance did."""
        if not _IMAGE_ID_RE.fullmatch(image_id):
            raise exception.ImageNotFound(image_id=exception.shown(image_id))
        try:
            with deadline.limit(self._total_timeout):
                adapter = self._adapter(context)
                self._authenticate(adapter, image_id)
                # A 401 is final: sending the same token again (keystoneauth
                # would, once) cannot change Glance's answer.
                resp = adapter.delete(
                    self._url(adapter, image_id), raise_exc=False,
                    redirect=False,
                    allow_reauth=False,
                    headers={'Accept': 'application/json'})
        except ks_exc.ClientException as exc:
            # keystoneauth's message names the URL that failed
            LOG.warning('Image service unreachable deleting image %s: '
                        '%s: %s', image_id, exc.__class__.__name__,
                        str(exc)[:300])
            raise exception.ImageServiceUnavailable()
        except deadline.DeadlineExceeded:
            LOG.warning('Image service did not answer within '
                        '[glance] total_timeout (%s s) deleting image %s',
                        self._total_timeout, image_id)
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

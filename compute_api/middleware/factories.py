"""Paste Deploy factories for the API pipeline.

Each factory hands the middleware the service's own ``ConfigOpts`` (the one
``compute_api.deploy.loadapp`` was given or, with any other Paste loader,
that of the section's ``config_dir``: see ``deploy.conf_from``), so that no
piece of the pipeline reads a global configuration object.
"""

from keystonemiddleware import auth_token
from oslo_middleware import cors as cors_mw
from oslo_middleware import healthcheck as healthcheck_mw
from oslo_middleware import http_proxy_to_wsgi as proxy_mw

from compute_api import deploy
from compute_api import policy
from compute_api.api import faults
from compute_api.api import versions as versions_mw
from compute_api.middleware import context as context_mw
from compute_api.middleware import request_id as request_id_mw
from compute_api.middleware import request_log as request_log_mw
from compute_api.middleware import sizelimit as sizelimit_mw


def _oslo(middleware_class):
    def factory(global_conf, **local_conf):
        conf = deploy.conf_from(global_conf, local_conf)
        return lambda app: middleware_class(app, conf)
    return factory


def _unless(option_is_set, middleware_class):
    """A factory that leaves the layer out when its option is not set:
    oslo.middleware's CORS and proxy-header layers do nothing then but cost
    time on every request."""
    def factory(global_conf, **local_conf):
        conf = deploy.conf_from(global_conf, local_conf)
        middleware_class(None, conf)  # registers the layer's options
        if not option_is_set(conf):
            return lambda app: app
        return lambda app: middleware_class(app, conf)
    return factory


cors = _unless(lambda conf: conf.cors.allowed_origin, cors_mw.CORS)
http_proxy_to_wsgi = _unless(
    lambda conf: conf.oslo_middleware.enable_proxy_headers_parsing,
    proxy_mw.HTTPProxyToWSGI)
request_id = _oslo(request_id_mw.ComputeRequestId)
sizelimit = _oslo(sizelimit_mw.RequestBodySizeLimiter)


class _PathApp:
    """Serves one exact path with its own app; passes every other path."""

    def __init__(self, application, path, app):
        self.application = application
        self.path = path
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO') == self.path:
            return self.app(environ, start_response)
        return self.application(environ, start_response)


def healthcheck(global_conf, path='/healthcheck', **local_conf):
    """oslo.middleware's healthcheck, answering only at ``path``; a request
    there that it declines (a source outside ``allowed_source_ranges``, a
    proxied one with ``ignore_proxied_requests``) goes on down the
    pipeline, as any other path does."""
    conf = deploy.conf_from(global_conf, local_conf)
    return lambda app: _PathApp(app, path,
                                healthcheck_mw.Healthcheck(app, conf))


def _plain(middleware_class):
    return lambda global_conf, **local_conf: middleware_class


faultwrap = _plain(faults.FaultWrapper)
request_log = _plain(request_log_mw.RequestLog)
versions = _plain(versions_mw.VersionsMiddleware)


def authtoken(global_conf, **local_conf):
    """keystonemiddleware's auth_token, reading the service's config; a
    configuration that could not validate any token refuses to load."""
    oslo_conf = deploy.conf_from(global_conf, local_conf)
    deploy.check_auth_token_conf(oslo_conf)
    conf = {key: value for key, value in local_conf.items()
            if key != deploy.CONFIG_DIR_OPTION}
    conf['oslo_config_config'] = oslo_conf
    return lambda app: auth_token.AuthProtocol(app, conf)


def context(global_conf, **local_conf):
    conf = deploy.conf_from(global_conf, local_conf)
    enforcer = policy.Enforcer(conf)
    return lambda app: context_mw.ContextMiddleware(app, enforcer)

"""The API router: one readable route table for both URL forms.

Every route is declared once, relative to the version root, and served both
as ``/v2.1/<path>`` and as ``/v2.1/{project_id}/<path>``. A known path asked
with a method it has no action for is answered 405 with ``Allow``; an
unknown path is 404. Before an action runs, the microversion is parsed and
the URL's project is checked against the token's; domain errors raised by
actions are turned into Compute faults here, in one place.
"""

import re

import routes
import webob
import webob.dec

from compute_api import deploy
from compute_api import exception
from compute_api.api import faults
from compute_api.api import images
from compute_api.api import microversion
from compute_api.image import glance

VERSION_ROOT = '/v2.1'
CONTEXT_KEY = 'compute_api.context'

# path (below the version root) -> {HTTP method: (controller, action)}
ROUTES = {
    '/images/{image_id}': {'DELETE': ('images', 'delete')},
}

# C0 control characters and DEL: no route has them. Routes' patterns end in
# '$', which also matches before a final line feed, so '{id}\n' would be
# routed as '{id}'; such paths are not routed at all.
CONTROL_CHARS = re.compile(r'[\x00-\x1f\x7f]')


class APIRouter:
    """WSGI app dispatching to controller actions through a Routes map."""

    def __init__(self, controllers):
        self._controllers = controllers
        self._mapper = routes.Mapper()
        for path, methods in ROUTES.items():
            for prefix in (VERSION_ROOT, VERSION_ROOT + '/{project_id}'):
                self._connect(prefix + path, methods)

    def _connect(self, path, methods):
        for method, (controller, action) in methods.items():
            self._mapper.connect(path, controller=controller, action=action,
                                 conditions={'method': [method]})
        self._mapper.connect(path, controller=None,
                             allowed=', '.join(sorted(methods)))

    def routes(self):
        """(path, method) pairs served, for docs and tests."""
        for route in self._mapper.matchlist:
            for method in (route.conditions or {}).get('method', []):
                yield route.routepath, method

    def match(self, environ):
        """The route of a request, or None for a path no route has. A
        known path asked with a method it has no action for matches with
        ``controller`` None and the methods it has in ``allowed``."""
        if CONTROL_CHARS.search(environ.get('PATH_INFO', '')):
            return None
        return self._mapper.match(environ=environ)

    @webob.dec.wsgify
    def __call__(self, req):
        match = self.match(req.environ)
        if match is None:
            raise faults.http_error(
                404, 'The resource could not be found.')
        if match['controller'] is None:
            raise faults.http_error(
                405, f'The method {exception.shown(req.method)} is not '
                     'allowed for this resource.', Allow=match['allowed'])
        version = microversion.from_request(req)
        try:
            resp = self._dispatch(req, match, version)
        except exception.ComputeAPIError as exc:
            # a 401 gets its WWW-Authenticate from auth_token, on the way out
            resp = faults.fault_response(exc.code, str(exc))
        resp.headers.update(microversion.response_headers(version))
        return resp

    def _dispatch(self, req, match, version):
        context = req.environ[CONTEXT_KEY]
        url_project = match.get('project_id')
        if url_project is not None and url_project != context.project_id:
            raise exception.ProjectMismatch(
                url_project=exception.shown(url_project),
                token_project=f"'{context.project_id}'" if context.project_id
                else '(none: the token is scoped to no project)')
        controller = self._controllers[match['controller']]
        action = getattr(controller, match['action'])
        kwargs = {k: v for k, v in match.items()
                  if k not in ('controller', 'action', 'project_id')}
        return action(req, context, version, **kwargs)


def build_router(conf):
    image_api = glance.ImageAPI(conf)
    return APIRouter({'images': images.ImagesController(image_api)})


def app_factory(global_conf, **local_conf):
    return build_router(deploy.conf_from(global_conf, local_conf))

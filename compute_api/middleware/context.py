"""Build the request context from what keystonemiddleware established.

Identity comes only from ``auth_token``: it removes any identity headers a
client sends and sets its own for a valid token. A request that reaches this
point without a confirmed user is refused (401; ``auth_token``, which the
answer passes on its way out, adds ``WWW-Authenticate`` to it).
"""

import webob.dec

from compute_api import context
from compute_api.api import faults
from compute_api.api import router

TOKEN_AUTH_KEY = 'keystone.token_auth'  # noqa: S105 (an environ key)


class ContextMiddleware:

    def __init__(self, application, enforcer):
        self.application = application
        self.enforcer = enforcer

    @webob.dec.wsgify
    def __call__(self, req):
        environ = req.environ
        environ[faults.SERVED_KEY] = True  # every answer below is a fault
        if (environ.get('HTTP_X_IDENTITY_STATUS') != 'Confirmed'
                or not environ.get('HTTP_X_USER_ID')):
            return faults.fault_response(401, 'Authentication required.')
        environ[router.CONTEXT_KEY] = context.RequestContext.from_environ(
            environ, user_auth_plugin=environ.get(TOKEN_AUTH_KEY),
            enforcer=self.enforcer)
        return req.get_response(self.application)

"""The request context: who is calling, and what they may do."""

from oslo_context import context


class RequestContext(context.RequestContext):
    """An oslo.context context that carries the policy enforcer and the
    caller's keystoneauth plugin (their token and service catalog)."""

    def __init__(self, user_auth_plugin=None, enforcer=None, **kwargs):
        super().__init__(**kwargs)
        self.user_auth_plugin = user_auth_plugin
        self._enforcer = enforcer

    def can(self, action, target):
        """Raise PolicyNotAuthorized unless this caller may do ``action``."""
        self._enforcer.authorize(self, action, target)

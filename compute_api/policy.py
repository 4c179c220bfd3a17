"""The policy enforcer and its one door, :func:`authorize`."""

from oslo_policy import policy

from compute_api import exception
from compute_api import policies


def init_enforcer(conf):
    """An enforcer for ``conf`` with the in-code defaults registered.

    oslo.policy checks the policy file's modification time on every
    enforcement, so an operator's edit takes effect without a restart.
    """
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(policies.list_rules())
    enforcer.load_rules()
    return enforcer


def authorize(enforcer, context, action, target):
    """Raise PolicyNotAuthorized unless ``context`` may do ``action``."""
    try:
        enforcer.authorize(action, target, context, do_raise=True,
                           exc=exception.PolicyNotAuthorized, action=action)
    except policy.InvalidScope:
        raise exception.PolicyNotAuthorized(action=action)


def get_enforcer():
    """Entry point for the oslopolicy command-line tools."""
    from compute_api import deploy
    return init_enforcer(deploy.load_conf(args=[]))

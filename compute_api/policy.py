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
    """Entry point for the oslopolicy command-line tools.

    The tools parse their own command line into oslo.config's global
    object; a ``--config-file`` given there is honoured, otherwise the
    service's own configuration directory is read.
    """
    from oslo_config import cfg

    from compute_api import deploy
    try:
        files = list(cfg.CONF.config_file or [])
    except cfg.Error:
        files = []
    args = [f'--config-file={path}' for path in files]
    return init_enforcer(deploy.load_conf(args=args))

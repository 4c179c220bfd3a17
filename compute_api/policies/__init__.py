"""Policy defaults in code: every rule the service enforces."""

from compute_api.policies import base
from compute_api.policies import images


def list_rules():
    return base.rules + images.rules

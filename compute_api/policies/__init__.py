"""Policy defaults in code: every rule the service enforces."""

import itertools

from compute_api.policies import base
from compute_api.policies import images


def list_rules():
    return list(itertools.chain(base.list_rules(), images.list_rules()))

"""Rules of the image proxy API."""

from oslo_policy import policy

from compute_api.policies import base

DELETE = 'os_compute_api:images:delete'

rules = [
    policy.DocumentedRuleDefault(
        name=DELETE,
        check_str=base.PROJECT_MEMBER_OR_ADMIN,
        description=(
            'Delete an image through the Compute image proxy API. The rule '
            'is checked against the caller\'s own project before the Image '
            'service is called; the Image service then applies its own '
            'ownership, visibility and protection checks.'),
        operations=[
            {'method': 'DELETE', 'path': '/images/{image_id}'},
            {'method': 'DELETE', 'path': '/{project_id}/images/{image_id}'},
        ],
        scope_types=['project']),
]

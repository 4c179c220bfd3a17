"""Base rules that the API rules are built from."""

from oslo_policy import policy

RULE_ADMIN_API = 'rule:context_is_admin'
PROJECT_MEMBER = 'rule:project_member_api'
PROJECT_MEMBER_OR_ADMIN = 'rule:project_member_or_admin'

rules = [
    policy.RuleDefault(
        name='context_is_admin',
        check_str='role:admin',
        description='A user with the admin role, in any project.'),
    policy.RuleDefault(
        name='project_member_api',
        check_str='role:member and project_id:%(project_id)s',
        description='A member of the project that owns the resource.'),
    policy.RuleDefault(
        name='project_member_or_admin',
        check_str=f'{PROJECT_MEMBER} or {RULE_ADMIN_API}',
        description='A member of the owning project, or an admin.'),
]

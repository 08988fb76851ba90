"""Identity's default RBAC rules (operators override them with identity.policy_file).

admin may do everything, in any scope. Readers of a domain read inside it; users read and
manage what is their own (their projects, password, application credentials, credentials).
"""

ADMIN = "role:admin"
SYSTEM_READER = "(role:reader and system_scope:all)"
DOMAIN_READER = "(role:reader and domain_id:%(target.domain_id)s)"
DOMAIN_MANAGER = "(role:manager and domain_id:%(target.domain_id)s)"
OWNER = "user_id:%(target.user_id)s"

ADMIN_OR_READER = f"{ADMIN} or {SYSTEM_READER}"
ADMIN_OR_DOMAIN_READER = f"{ADMIN} or {SYSTEM_READER} or {DOMAIN_READER}"
ADMIN_OR_DOMAIN_MANAGER = f"{ADMIN} or {DOMAIN_MANAGER}"
ADMIN_OR_OWNER = f"{ADMIN} or {SYSTEM_READER} or {OWNER}"


def _crud(kind: str, read: str, write: str, plural: str | None = None) -> dict[str, str]:
    plural = plural or kind + "s"
    return {
        f"identity:get_{kind}": read,
        f"identity:list_{plural}": read,
        f"identity:create_{kind}": write,
        f"identity:update_{kind}": write,
        f"identity:delete_{kind}": write,
    }


RULES: dict[str, str] = {
    "admin_required": ADMIN,
    **_crud("region", "@", ADMIN),
    **_crud("service", ADMIN_OR_READER, ADMIN),
    **_crud("endpoint", ADMIN_OR_READER, ADMIN),
    **_crud("endpoint_group", ADMIN_OR_READER, ADMIN),
    **_crud("domain", ADMIN_OR_READER, ADMIN),
    **_crud("domain_config", ADMIN_OR_READER, ADMIN),
    **_crud("policy", ADMIN_OR_READER, ADMIN, "policies"),
    **_crud("consumer", ADMIN_OR_READER, ADMIN),
    **_crud("registered_limit", "@", ADMIN),
    **_crud("limit", "@", ADMIN),
    **_crud("role", ADMIN_OR_DOMAIN_READER, ADMIN),
    **_crud("domain_role", ADMIN_OR_DOMAIN_READER, ADMIN),
    **_crud("implied_role", ADMIN_OR_READER, ADMIN),
    **_crud("user", ADMIN_OR_DOMAIN_READER, ADMIN_OR_DOMAIN_MANAGER),
    **_crud("group", ADMIN_OR_DOMAIN_READER, ADMIN_OR_DOMAIN_MANAGER),
    **_crud("project", ADMIN_OR_DOMAIN_READER, ADMIN_OR_DOMAIN_MANAGER),
    **_crud("credential", ADMIN_OR_OWNER, f"{ADMIN} or {OWNER}"),
    **_crud("application_credential", ADMIN_OR_OWNER, f"{ADMIN} or {OWNER}"),
    **_crud("access_rule", ADMIN_OR_OWNER, f"{ADMIN} or {OWNER}"),
    **_crud("trust", f"{ADMIN} or user_id:%(target.trust.trustor_user_id)s or "
                     "user_id:%(target.trust.trustee_user_id)s", ADMIN),
    "identity:get_domain": f"{ADMIN_OR_READER} or domain_id:%(target.domain.id)s or "
                           "project_domain_id:%(target.domain.id)s",
    "identity:get_project": f"{ADMIN_OR_DOMAIN_READER} or project_id:%(target.project.id)s",
    "identity:get_user": f"{ADMIN_OR_DOMAIN_READER} or user_id:%(target.user.id)s",
    "identity:list_user_projects": f"{ADMIN_OR_DOMAIN_READER} or {OWNER}",
    "identity:list_groups_for_user": f"{ADMIN_OR_DOMAIN_READER} or {OWNER}",
    "identity:change_password": f"{ADMIN} or {OWNER}",
    "identity:create_trust": "user_id:%(target.trust.trustor_user_id)s",
    "identity:delete_trust": f"{ADMIN} or user_id:%(target.trust.trustor_user_id)s",
    "identity:list_project_tags": f"{ADMIN_OR_DOMAIN_READER} or project_id:%(target.project.id)s",
    "identity:get_project_tag": f"{ADMIN_OR_DOMAIN_READER} or project_id:%(target.project.id)s",
    "identity:update_project_tags": ADMIN_OR_DOMAIN_MANAGER,
    "identity:create_project_tag": ADMIN_OR_DOMAIN_MANAGER,
    "identity:delete_project_tag": ADMIN_OR_DOMAIN_MANAGER,
    "identity:delete_project_tags": ADMIN_OR_DOMAIN_MANAGER,
    "identity:list_users_in_group": ADMIN_OR_DOMAIN_READER,
    "identity:add_user_to_group": ADMIN_OR_DOMAIN_MANAGER,
    "identity:remove_user_from_group": ADMIN_OR_DOMAIN_MANAGER,
    "identity:check_user_in_group": ADMIN_OR_DOMAIN_READER,
    "identity:check_grant": ADMIN_OR_DOMAIN_READER,
    "identity:list_grants": ADMIN_OR_DOMAIN_READER,
    "identity:create_grant": ADMIN_OR_DOMAIN_MANAGER,
    "identity:revoke_grant": ADMIN_OR_DOMAIN_MANAGER,
    "identity:list_system_grants_for_user": ADMIN_OR_READER,
    "identity:check_system_grant_for_user": ADMIN_OR_READER,
    "identity:create_system_grant_for_user": ADMIN,
    "identity:revoke_system_grant_for_user": ADMIN,
    "identity:list_system_grants_for_group": ADMIN_OR_READER,
    "identity:check_system_grant_for_group": ADMIN_OR_READER,
    "identity:create_system_grant_for_group": ADMIN,
    "identity:revoke_system_grant_for_group": ADMIN,
    "identity:list_role_assignments": ADMIN_OR_DOMAIN_READER,
    "identity:list_role_assignments_for_tree": ADMIN_OR_DOMAIN_READER,
    "identity:list_implied_roles": ADMIN_OR_READER,
    "identity:list_role_inference_rules": ADMIN_OR_READER,
    "identity:check_implied_role": ADMIN_OR_READER,
    "identity:validate_token": f"{ADMIN_OR_READER} or rule:service_role or "
                               "user_id:%(target.token.user_id)s",
    "identity:check_token": f"{ADMIN_OR_READER} or rule:service_role or "
                            "user_id:%(target.token.user_id)s",
    "identity:revoke_token": f"{ADMIN} or rule:service_role or user_id:%(target.token.user_id)s",
    "service_role": "role:service",
    "identity:list_revoke_events": "@",
    "identity:get_auth_catalog": "@",
    "identity:get_auth_projects": "@",
    "identity:get_auth_domains": "@",
    "identity:get_auth_system": "@",
    "identity:project_endpoint": ADMIN_OR_READER,
    "identity:manage_project_endpoint": ADMIN,
    "identity:ec2_credential": f"{ADMIN} or {OWNER}",
}

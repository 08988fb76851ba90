"""The image service's default RBAC rules, after Glance's "secure RBAC" defaults (operators
override them with image.policy_file).

Targets carry the image's owner as project_id, its visibility, and member_id: the caller's
project when it is a member of the image. Visibility itself (private images are invisible to
others, shared ones to non-members) is enforced by the queries, which answer 404 as Glance does.
"""

ADMIN = "role:admin"
PROJECT_MEMBER = "(role:member and project_id:%(target.project_id)s)"
PROJECT_READER = "(role:reader and project_id:%(target.project_id)s)"
IMAGE_MEMBER = "project_id:%(target.member_id)s"
VISIBLE = ("(project_id:%(target.project_id)s or project_id:%(target.member_id)s or "
           "'community':%(target.visibility)s or 'public':%(target.visibility)s or "
           "'shared':%(target.visibility)s)")
ADMIN_OR_MEMBER = f"{ADMIN} or {PROJECT_MEMBER}"
ADMIN_OR_READER = f"{ADMIN} or {PROJECT_READER}"
PUBLIC_NAMESPACE = ("(role:reader and (project_id:%(target.project_id)s or "
                    "'public':%(target.visibility)s))")

RULES: dict[str, str] = {
    "context_is_admin": ADMIN,
    "image:get_images": ADMIN_OR_READER,
    "image:get_image": f"{ADMIN} or (role:reader and {VISIBLE})",
    "image:add_image": f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(target.owner)s)",
    "image:modify_image": ADMIN_OR_MEMBER,
    "image:delete_image": ADMIN_OR_MEMBER,
    "image:publicize_image": ADMIN,
    "image:communitize_image": ADMIN_OR_MEMBER,
    "image:download_image": f"{ADMIN} or (role:member and {VISIBLE})",
    "image:upload_image": ADMIN_OR_MEMBER,
    "image:deactivate": ADMIN_OR_MEMBER,
    "image:reactivate": ADMIN_OR_MEMBER,
    "image:copy_image": ADMIN,
    "image:delete_image_location": ADMIN,
    "image:get_image_location": ADMIN_OR_MEMBER,
    "image:set_image_location": ADMIN_OR_MEMBER,
    "image:add_image_location": ADMIN_OR_MEMBER,
    "image:fetch_image_location": f"{ADMIN} or role:service",
    "image:cache_list": ADMIN,
    "image:cache_image": ADMIN,
    "image:cache_delete": ADMIN,
    "image:add_member": ADMIN_OR_MEMBER,
    "image:delete_member": ADMIN_OR_MEMBER,
    "image:get_member": f"{ADMIN} or (role:reader and (project_id:%(target.project_id)s or "
                        f"{IMAGE_MEMBER}))",
    "image:get_members": f"{ADMIN} or (role:reader and (project_id:%(target.project_id)s or "
                         f"{IMAGE_MEMBER}))",
    "image:modify_member": f"{ADMIN} or (role:member and {IMAGE_MEMBER})",
    "image:get_tasks": ADMIN_OR_READER,
    "image:get_task": ADMIN,
    "image:stores_info_detail": f"{ADMIN} or role:service",
    "image:get_metadef_namespace": f"{ADMIN} or {PUBLIC_NAMESPACE}",
    "image:get_metadef_namespaces": ADMIN_OR_READER,
    "image:modify_metadef_namespace": ADMIN,
    "image:add_metadef_namespace": ADMIN,
    "image:delete_metadef_namespace": ADMIN,
    "image:get_metadef_object": f"{ADMIN} or {PUBLIC_NAMESPACE}",
    "image:modify_metadef_object": ADMIN,
    "image:list_metadef_resource_types": "role:reader",
    "image:add_metadef_resource_type_association": ADMIN,
    "image:remove_metadef_resource_type_association": ADMIN,
}

"""Grants (project, domain, system, OS-INHERIT) and /v3/role_assignments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.identity import assignments as logic
from nimbus.identity import roles
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.assignments import AssignmentQuery, Grant
from nimbus.identity.models import SYSTEM_TARGET, Group, Project, Role, User
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {
    # As Keystone: a domain manager may hand out only these roles (never admin)...
    "domain_managed_target_role": "'manager':%(target.role.name)s or "
                                  "'member':%(target.role.name)s or "
                                  "'reader':%(target.role.name)s",
    # ...and only to users and groups of their own domain. Checked after create/revoke_grant.
    "identity:manage_grant_limits": "rule:admin_required or "
                                    "(domain_id:%(target.actor.domain_id)s and "
                                    "rule:domain_managed_target_role)",
}

ACTIONS = {"check": "check_grant", "list": "list_grants", "create": "create_grant",
           "revoke": "revoke_grant"}
SYSTEM_ACTIONS = {"check": "check_system_grant_for_{}", "list": "list_system_grants_for_{}",
                  "create": "create_system_grant_for_{}", "revoke": "revoke_system_grant_for_{}"}


def _rule(action: str, grant: Grant) -> str:
    if grant.target == "system":
        return "identity:" + SYSTEM_ACTIONS[action].format(grant.actor)
    return "identity:" + ACTIONS[action]


def _target(grant: Grant, role: Role | None, actor: User | Group | None,
            target: Project | None) -> dict[str, Any]:
    t: dict[str, Any] = {}
    if role is not None:
        t["role"] = {"id": role.id, "name": role.name, "domain_id": roles.domain_of(role)}
    if actor is not None:
        t[grant.actor] = t["actor"] = {"id": actor.id, "name": actor.name,
                                       "domain_id": actor.domain_id}
    if target is not None and grant.target == "project":
        t["project"] = {"id": target.id, "domain_id": target.domain_id}
        t["domain_id"] = target.domain_id
    elif target is not None:
        t["domain"] = {"id": target.id}
        t["domain_id"] = target.id
    return {"target": t}


async def _grant_op(c: Caller, action: str, grant: Grant) -> Response:
    """Check, create or revoke one grant. Unknown role, actor or target is a 404 (a revoke
    tolerates a vanished actor, so grants of deleted users and groups can be cleaned up)."""
    write = action in ("create", "revoke")
    db = c.svc.db.transaction() if write else c.svc.db.session()
    async with db as session:
        role = await roles.get(session, grant.role_id)
        actor = await logic.get_actor(session, grant.actor, grant.actor_id,
                                      allow_missing=action == "revoke")
        target = await logic.get_target(session, grant.target, grant.target_id)
        policy_target = _target(grant, role, actor, target)
        c.enforce(_rule(action, grant), policy_target)
        if write:
            c.enforce("identity:manage_grant_limits", policy_target)
        if action == "create":
            await logic.create_grant(session, c.svc, grant, role, target)
        elif action == "revoke":
            await logic.delete_grant(session, c.svc, grant)
        else:
            await logic.check_grant(session, grant)
    return no_content()


async def _list_op(c: Caller, grant: Grant) -> Response:
    async with c.svc.db.session() as session:
        actor = await logic.get_actor(session, grant.actor, grant.actor_id)
        target = await logic.get_target(session, grant.target, grant.target_id)
        c.enforce(_rule("list", grant), _target(grant, None, actor, target))
        rows = await logic.list_grant_roles(session, grant.actor, grant.actor_id, grant.target,
                                            grant.target_id, grant.inherited)
    base = c.url("")
    return json_response({"roles": [roles.render(r, base) for r in rows],
                          "links": c.collection_links()})


Handler = Callable[..., Awaitable[Response]]


def _scoped_routes(collection: str, actor: str, target: str, *, inherited: bool = False,
                   listing: bool = True) -> None:
    """PUT/GET/HEAD/DELETE {collection}/{role_id}[/inherited_to_projects] and the list."""
    tail = "/inherited_to_projects" if inherited else ""

    def grant(target_id: str, actor_id: str, role_id: str) -> Grant:
        return Grant(actor, actor_id, target, target_id, role_id, inherited)

    async def create(target_id: str, actor_id: str, role_id: str,
                     c: Caller = Depends(caller)) -> Response:
        return await _grant_op(c, "create", grant(target_id, actor_id, role_id))

    async def check(target_id: str, actor_id: str, role_id: str,
                    c: Caller = Depends(caller)) -> Response:
        return await _grant_op(c, "check", grant(target_id, actor_id, role_id))

    async def revoke(target_id: str, actor_id: str, role_id: str,
                     c: Caller = Depends(caller)) -> Response:
        return await _grant_op(c, "revoke", grant(target_id, actor_id, role_id))

    async def list_(target_id: str, actor_id: str, c: Caller = Depends(caller)) -> Response:
        return await _list_op(c, grant(target_id, actor_id, ""))

    _register(collection + "/{role_id}" + tail, collection + tail if listing else None,
              create, check, revoke, list_)


def _system_routes(actor: str) -> None:
    collection = f"/v3/system/{actor}s/{{actor_id}}/roles"

    def grant(actor_id: str, role_id: str) -> Grant:
        return Grant(actor, actor_id, "system", SYSTEM_TARGET, role_id)

    async def create(actor_id: str, role_id: str, c: Caller = Depends(caller)) -> Response:
        return await _grant_op(c, "create", grant(actor_id, role_id))

    async def check(actor_id: str, role_id: str, c: Caller = Depends(caller)) -> Response:
        return await _grant_op(c, "check", grant(actor_id, role_id))

    async def revoke(actor_id: str, role_id: str, c: Caller = Depends(caller)) -> Response:
        return await _grant_op(c, "revoke", grant(actor_id, role_id))

    async def list_(actor_id: str, c: Caller = Depends(caller)) -> Response:
        return await _list_op(c, grant(actor_id, ""))

    _register(collection + "/{role_id}", collection, create, check, revoke, list_)


def _register(one: str, many: str | None, create: Handler, check: Handler, revoke: Handler,
              list_: Handler) -> None:
    router.add_api_route(one, create, methods=["PUT"], status_code=204)
    router.add_api_route(one, check, methods=["GET", "HEAD"], status_code=204)
    router.add_api_route(one, revoke, methods=["DELETE"], status_code=204)
    if many is not None:
        router.add_api_route(many, list_, methods=["GET", "HEAD"])


for _actor in ("user", "group"):
    for _target_kind in ("project", "domain"):
        _path = f"/v3/{_target_kind}s/{{target_id}}/{_actor}s/{{actor_id}}/roles"
        _scoped_routes(_path, _actor, _target_kind)
        # OS-INHERIT: inherited to the projects below; only domains list them.
        _scoped_routes("/v3/OS-INHERIT" + _path[3:], _actor, _target_kind, inherited=True,
                       listing=_target_kind == "domain")
    _system_routes(_actor)


# -- /v3/role_assignments ----------------------------------------------------------------------
def _flag(params: Any, name: str) -> bool:
    """Keystone's reading: present means true, unless given as 0."""
    return name in params and params[name] != "0"


def _query(params: Any) -> AssignmentQuery:
    def given(name: str) -> str | None:
        return params.get(name) or None

    for one, other, message in (
            ("scope.domain.id", "scope.project.id", "Specify a domain or project, not both"),
            ("scope.domain.id", "scope.system", "Specify system or domain, not both"),
            ("scope.project.id", "scope.system", "Specify system or project, not both"),
            ("user.id", "group.id", "Specify a user or group, not both")):
        if given(one) and given(other):
            raise BadRequest(message)
    inherited = None
    if "scope.OS-INHERIT:inherited_to" in params:
        inherited = params["scope.OS-INHERIT:inherited_to"] == "projects"
    q = AssignmentQuery(
        role_id=given("role.id"), user_id=given("user.id"), group_id=given("group.id"),
        system=params.get("scope.system") == "all", domain_id=given("scope.domain.id"),
        project_id=given("scope.project.id"), include_subtree=_flag(params, "include_subtree"),
        inherited=inherited, effective=_flag(params, "effective"))
    if q.effective and q.group_id:
        raise BadRequest("Combining effective and group filter will always result in an "
                         "empty list.")
    if q.effective and q.inherited and q.domain_id:
        raise BadRequest("Combining effective, domain and inherited filters will always "
                         "result in an empty list.")
    return q


@router.api_route("/v3/role_assignments", methods=["GET", "HEAD"])
async def list_role_assignments(c: Caller = Depends(caller)) -> Response:
    params = c.request.query_params
    q = _query(params)
    async with c.svc.db.session() as session:
        if q.include_subtree:
            target: dict[str, Any] = {}
            if q.project_id:
                project = await logic.get_target(session, "project", q.project_id)
                assert project is not None
                target = {"project": {"id": project.id, "domain_id": project.domain_id},
                          "domain_id": project.domain_id}
            c.enforce("identity:list_role_assignments_for_tree", {"target": target})
            if not q.project_id:
                raise BadRequest("scope.project.id must be specified if include_subtree is "
                                 "also specified")
        else:
            c.enforce("identity:list_role_assignments",
                      {"target": {"domain_id": c.ctx.domain_id} if c.ctx.domain_id else {}})
        refs = await logic.list_assignments(session, q)
        if c.ctx.domain_id and not q.include_subtree:
            refs = await logic.limit_to_domain(session, refs, c.ctx.domain_id)
        names = await logic.Names.load(session, refs) if _flag(params, "include_names") else None
    base = c.url("/v3")
    return json_response({"role_assignments": [logic.render(r, base, names) for r in refs],
                          "links": c.collection_links()})

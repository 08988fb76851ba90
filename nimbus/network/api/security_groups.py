"""/v2.0/security-groups and /v2.0/security-group-rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import networks, quotas, standard
from nimbus.network import security_groups as logic
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.models import RBACPolicy
from nimbus.web.responses import no_content

router = APIRouter()


async def _render(session: Any, c: Caller, groups: list[Any]) -> list[dict[str, Any]]:
    ids = [g.id for g in groups]
    rules = await logic.rules_of(session, ids)
    tags = await standard.tags_of(session, ids)
    defaults = await logic.defaults_among(session, ids)
    shared: set[str] = set()
    if ids:
        from sqlalchemy import select

        shared = set((await session.scalars(select(RBACPolicy.object_id).where(
            RBACPolicy.object_type == "security_group", RBACPolicy.object_id.in_(ids),
            RBACPolicy.target_tenant.in_([c.project_id, "*"])))).all())
    return [logic.render(g, rules[g.id], tags, g.id in shared and g.project_id != c.project_id,
                         defaults) for g in groups]


async def _ensure_default(c: Caller) -> None:
    if not c.project_id or c.project_id in c.svc.default_groups:
        return
    async with c.svc.db.transaction() as session:
        await logic.ensure_default(session, c.svc, c.project_id)


@router.post("/v2.0/security-groups", status_code=201)
async def create_groups(body: dict[str, Any] = Body(...),
                        c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "security_group", "security_groups")
    await _ensure_default(c)
    rows = []
    async with c.svc.db.transaction() as session:
        for item in items:
            data = v.parse(logic.GROUP_SPEC, item, "security_group", "create")
            project = networks.project_for(c.ctx, data)
            c.enforce("create_security_group", {"project_id": project})
            if project != c.project_id:
                await logic.ensure_default(session, c.svc, project)
            await quotas.check(session, project, "security_group")
            rows.append(await logic.create(session, c.svc, data, project))
        bodies = await _render(session, c, rows)
    for b in bodies:
        await notify(c, "security_group.create.end", "security_group", b)
    return created("security_group", "security_groups", bodies, bulk)


@router.get("/v2.0/security-groups")
async def list_groups(c: Caller = Depends(caller)) -> Response:
    await _ensure_default(c)
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
        bodies = await _render(session, c, rows)
    return listed(c, "security_groups", rows, more, params, bodies)


@router.get("/v2.0/security-groups/{sg_id}")
async def show_group(sg_id: str, c: Caller = Depends(caller)) -> Response:
    await _ensure_default(c)
    async with c.svc.db.session() as session:
        sg = await logic.get(session, c.ctx, sg_id)
        body = (await _render(session, c, [sg]))[0]
    return shown(c, "security_group", body)


@router.put("/v2.0/security-groups/{sg_id}")
async def update_group(sg_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.GROUP_SPEC, resource_body(body, "security_group"), "security_group",
                   "update")
    async with c.svc.db.transaction() as session:
        sg = await logic.get(session, c.ctx, sg_id)
        c.enforce("update_security_group", {"project_id": sg.project_id})
        standard.check_if_match(sg, c.if_match())
        await logic.update(session, sg, data)
        await session.flush()
        out = (await _render(session, c, [sg]))[0]
    await notify(c, "security_group.update.end", "security_group", out)
    await c.svc.security_groups_changed([sg_id])
    return shown(c, "security_group", out)


@router.delete("/v2.0/security-groups/{sg_id}", status_code=204)
async def delete_group(sg_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        sg = await logic.get(session, c.ctx, sg_id)
        c.enforce("delete_security_group", {"project_id": sg.project_id})
        await logic.delete_group(session, c.svc, c.ctx, sg)
    await notify(c, "security_group.delete.end", "security_group", {"id": sg_id})
    return no_content()


# -- rules -------------------------------------------------------------------------------------
async def _render_rules(session: Any, rules: list[Any]) -> list[dict[str, Any]]:
    defaults = await logic.defaults_among(session, list({r.security_group_id for r in rules}))
    return [logic.render_rule(r, defaults) for r in rules]


@router.post("/v2.0/security-group-rules", status_code=201)
async def create_rules(body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "security_group_rule", "security_group_rules")
    await _ensure_default(c)
    rows = []
    async with c.svc.db.transaction() as session:
        for item in items:
            data = v.parse(logic.RULE_SPEC, item, "security_group_rule", "create")
            sg = await logic.get(session, c.ctx, data["security_group_id"])
            project = networks.project_for(c.ctx, data) if not c.is_admin else (
                data.pop("project_id", None) or data.pop("tenant_id", None) or sg.project_id)
            c.enforce("create_security_group_rule", {"project_id": sg.project_id})
            await quotas.check(session, project, "security_group_rule")
            rows.append(await logic.create_rule(session, c.ctx, data, project))
        bodies = await _render_rules(session, rows)
    for b in bodies:
        await notify(c, "security_group_rule.create.end", "security_group_rule", b)
    await c.svc.security_groups_changed(list({r.security_group_id for r in rows}))
    return created("security_group_rule", "security_group_rules", bodies, bulk)


@router.get("/v2.0/security-group-rules")
async def list_rules(c: Caller = Depends(caller)) -> Response:
    await _ensure_default(c)
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.list_rules(session, c.ctx, params)
        bodies = await _render_rules(session, rows)
    return listed(c, "security_group_rules", rows, more, params, bodies)


@router.get("/v2.0/security-group-rules/{rule_id}")
async def show_rule(rule_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        rule = await logic.get_rule(session, c.ctx, rule_id)
        body = (await _render_rules(session, [rule]))[0]
    return shown(c, "security_group_rule", body)


@router.put("/v2.0/security-group-rules/{rule_id}")
async def update_rule(rule_id: str, body: dict[str, Any] = Body(...),
                      c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.RULE_SPEC, resource_body(body, "security_group_rule"),
                   "security_group_rule", "update")
    async with c.svc.db.transaction() as session:
        rule = await logic.get_rule(session, c.ctx, rule_id)
        c.enforce("update_security_group_rule", {"project_id": rule.project_id})
        if "description" in data:
            rule.description = data["description"] or ""
        standard.bump(rule)
        await session.flush()
        out = (await _render_rules(session, [rule]))[0]
    return shown(c, "security_group_rule", out)


@router.delete("/v2.0/security-group-rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        rule = await logic.get_rule(session, c.ctx, rule_id)
        c.enforce("delete_security_group_rule", {"project_id": rule.project_id})
        sg_id = rule.security_group_id
        await logic.delete_rule(session, rule)
    await notify(c, "security_group_rule.delete.end", "security_group_rule", {"id": rule_id})
    await c.svc.security_groups_changed([sg_id])
    return no_content()


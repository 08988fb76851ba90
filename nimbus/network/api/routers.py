"""/v2.0/routers, with add/remove_router_interface and add/remove_extraroutes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import networks, quotas, standard
from nimbus.network import routers as logic
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.errors import bad_request
from nimbus.web.responses import json_response, no_content

router = APIRouter()


def _check_gateway_attrs(c: Caller, action: str, data: dict[str, Any],
                         target: dict[str, Any]) -> None:
    c.enforce_attrs(action, "router", {k: x for k, x in data.items()
                                       if k != "external_gateway_info"}, target)
    info = data.get("external_gateway_info") or {}
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info:
            c.enforce(f"{action}_router:external_gateway_info:{key}", target)


@router.post("/v2.0/routers", status_code=201)
async def create_routers(body: dict[str, Any] = Body(...),
                         c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "router", "routers")
    rows = []
    async with c.svc.db.transaction() as session:
        for item in items:
            data = v.parse(logic.SPEC, item, "router", "create")
            project = networks.project_for(c.ctx, data)
            _check_gateway_attrs(c, "create", data, {"project_id": project})
            await quotas.check(session, project, "router")
            rows.append(await logic.create(session, c.svc, c.ctx, data, project))
        bodies = await logic.render_many(session, rows, c.hidden("router"))
    for b in bodies:
        await notify(c, "router.create.end", "router", b)
    c.svc.after(c.svc.routers_changed([b["id"] for b in bodies]))
    return created("router", "routers", bodies, bulk)


@router.get("/v2.0/routers")
async def list_routers(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
        bodies = await logic.render_many(session, rows, c.hidden("router"))
    return listed(c, "routers", rows, more, params, bodies)


@router.get("/v2.0/routers/{router_id}")
async def show_router(router_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        r = await logic.get(session, c.ctx, router_id)
        body = (await logic.render_many(session, [r], c.hidden("router")))[0]
    return shown(c, "router", body)


@router.put("/v2.0/routers/{router_id}")
async def update_router(router_id: str, body: dict[str, Any] = Body(...),
                        c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.SPEC, resource_body(body, "router"), "router", "update")
    async with c.svc.db.transaction() as session:
        r = await logic.get(session, c.ctx, router_id)
        _check_gateway_attrs(c, "update", data, {"project_id": r.project_id})
        standard.check_if_match(r, c.if_match())
        await logic.update(session, c.svc, c.ctx, r, data)
        await session.flush()
        out = (await logic.render_many(session, [r], c.hidden("router")))[0]
    await notify(c, "router.update.end", "router", out)
    c.svc.after(c.svc.routers_changed([router_id]))
    return shown(c, "router", out)


@router.delete("/v2.0/routers/{router_id}", status_code=204)
async def delete_router(router_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        r = await logic.get(session, c.ctx, router_id)
        c.enforce("delete_router", {"project_id": r.project_id})
        await logic.delete_router(session, r)
    await notify(c, "router.delete.end", "router", {"id": router_id})
    c.svc.after(c.svc.routers_changed([router_id]))
    return no_content()


@router.put("/v2.0/routers/{router_id}/add_router_interface")
async def add_interface(router_id: str, body: dict[str, Any] = Body(...),
                        c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        r = await logic.get(session, c.ctx, router_id)
        c.enforce("add_router_interface", {"project_id": r.project_id})
        out = await logic.add_interface(session, c.svc, c.ctx, r, body)
    await c.svc.notify("router.interface.create", {"router_interface": out})
    c.svc.after(c.svc.routers_changed([router_id]))
    return json_response(out)


@router.put("/v2.0/routers/{router_id}/remove_router_interface")
async def remove_interface(router_id: str, body: dict[str, Any] = Body(...),
                           c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        r = await logic.get(session, c.ctx, router_id)
        c.enforce("remove_router_interface", {"project_id": r.project_id})
        out = await logic.remove_interface(session, c.ctx, r, body)
    await c.svc.notify("router.interface.delete", {"router_interface": out})
    c.svc.after(c.svc.routers_changed([router_id]))
    return json_response(out)


async def _routes_change(router_id: str, body: dict[str, Any], c: Caller, add: bool) -> Response:
    inner = resource_body(body, "router")
    if set(inner) != {"routes"}:
        raise bad_request("Only 'routes' may be given when adding or removing extra routes.")
    routes = logic.routes(inner["routes"], "routes")
    async with c.svc.db.transaction() as session:
        r = await logic.get(session, c.ctx, router_id)
        c.enforce("update_router", {"project_id": r.project_id})
        await logic.change_routes(session, r, routes if add else [], [] if add else routes)
        await session.flush()
        out = (await logic.render_many(session, [r], c.hidden("router")))[0]
    await notify(c, "router.update.end", "router", out)
    c.svc.after(c.svc.routers_changed([router_id]))
    return json_response({"router": out})


@router.put("/v2.0/routers/{router_id}/add_extraroutes")
async def add_extraroutes(router_id: str, body: dict[str, Any] = Body(...),
                          c: Caller = Depends(caller)) -> Response:
    return await _routes_change(router_id, body, c, True)


@router.put("/v2.0/routers/{router_id}/remove_extraroutes")
async def remove_extraroutes(router_id: str, body: dict[str, Any] = Body(...),
                             c: Caller = Depends(caller)) -> Response:
    return await _routes_change(router_id, body, c, False)

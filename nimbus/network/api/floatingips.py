"""/v2.0/floatingips and /v2.0/floatingips/{id}/port_forwardings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import floatingips as logic
from nimbus.network import networks, query, quotas, standard
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.models import PortForwarding
from nimbus.web.responses import json_response, no_content

router = APIRouter()


@router.post("/v2.0/floatingips", status_code=201)
async def create_fips(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "floatingip", "floatingips")
    rows = []
    async with c.svc.db.transaction() as session:
        for item in items:
            data = v.parse(logic.SPEC, item, "floatingip", "create")
            project = networks.project_for(c.ctx, data)
            c.enforce_attrs("create", "floatingip", data, {"project_id": project})
            await quotas.check(session, project, "floatingip")
            rows.append(await logic.create(session, c.svc, c.ctx, data, project))
        bodies = await logic.render_many(session, rows)
    for b in bodies:
        await notify(c, "floatingip.create.end", "floatingip", b)
    c.svc.after(c.svc.routers_changed([b["router_id"] for b in bodies]))
    return created("floatingip", "floatingips", bodies, bulk)


@router.get("/v2.0/floatingips")
async def list_fips(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
        bodies = await logic.render_many(session, rows)
    return listed(c, "floatingips", rows, more, params, bodies)


@router.get("/v2.0/floatingips/{fip_id}")
async def show_fip(fip_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        body = (await logic.render_many(session, [fip]))[0]
    return shown(c, "floatingip", body)


@router.put("/v2.0/floatingips/{fip_id}")
async def update_fip(fip_id: str, body: dict[str, Any] = Body(...),
                     c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.SPEC, resource_body(body, "floatingip"), "floatingip", "update")
    async with c.svc.db.transaction() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        c.enforce("update_floatingip", {"project_id": fip.project_id})
        standard.check_if_match(fip, c.if_match())
        old_router = fip.router_id
        await logic.update(session, c.ctx, fip, data)
        await session.flush()
        out = (await logic.render_many(session, [fip]))[0]
    await notify(c, "floatingip.update.end", "floatingip", out)
    c.svc.after(c.svc.routers_changed([old_router, out["router_id"]]))
    return shown(c, "floatingip", out)


@router.delete("/v2.0/floatingips/{fip_id}", status_code=204)
async def delete_fip(fip_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        c.enforce("delete_floatingip", {"project_id": fip.project_id})
        old_router = fip.router_id
        await logic.delete_fip(session, fip)
    await notify(c, "floatingip.delete.end", "floatingip", {"id": fip_id})
    c.svc.after(c.svc.routers_changed([old_router]))
    return no_content()


# -- port forwardings --------------------------------------------------------------------------
@router.post("/v2.0/floatingips/{fip_id}/port_forwardings", status_code=201)
async def create_pf(fip_id: str, body: dict[str, Any] = Body(...),
                    c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.PF_SPEC, resource_body(body, "port_forwarding"), "port_forwarding",
                   "create")
    async with c.svc.db.transaction() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        c.enforce("create_port_forwarding", {"project_id": fip.project_id})
        pf = await logic.create_pf(session, c.ctx, fip, data)
        out = logic.render_pf(pf)
        router_id = fip.router_id
    await notify(c, "port_forwarding.create.end", "port_forwarding", out)
    c.svc.after(c.svc.routers_changed([router_id]))
    return json_response({"port_forwarding": out}, 201)


@router.get("/v2.0/floatingips/{fip_id}/port_forwardings")
async def list_pfs(fip_id: str, c: Caller = Depends(caller)) -> Response:
    from sqlalchemy import select

    params = c.params()
    async with c.svc.db.session() as session:
        await logic.get(session, c.ctx, fip_id)
        q = query.apply_filters(select(PortForwarding).where(
            PortForwarding.floatingip_id == fip_id), logic.PF_COLUMNS, params)
        rows, more = await query.paginate(session, q, PortForwarding, logic.PF_COLUMNS, params)
    return listed(c, "port_forwardings", rows, more, params, [logic.render_pf(p) for p in rows])


@router.get("/v2.0/floatingips/{fip_id}/port_forwardings/{pf_id}")
async def show_pf(fip_id: str, pf_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        pf = await logic.get_pf(session, fip, pf_id)
    return shown(c, "port_forwarding", logic.render_pf(pf))


@router.put("/v2.0/floatingips/{fip_id}/port_forwardings/{pf_id}")
async def update_pf(fip_id: str, pf_id: str, body: dict[str, Any] = Body(...),
                    c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.PF_SPEC, resource_body(body, "port_forwarding"), "port_forwarding",
                   "update")
    async with c.svc.db.transaction() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        c.enforce("update_port_forwarding", {"project_id": fip.project_id})
        pf = await logic.get_pf(session, fip, pf_id)
        await logic.update_pf(session, c.ctx, fip, pf, data)
        out = logic.render_pf(pf)
    return json_response({"port_forwarding": out})


@router.delete("/v2.0/floatingips/{fip_id}/port_forwardings/{pf_id}", status_code=204)
async def delete_pf(fip_id: str, pf_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        fip = await logic.get(session, c.ctx, fip_id)
        c.enforce("delete_port_forwarding", {"project_id": fip.project_id})
        pf = await logic.get_pf(session, fip, pf_id)
        await logic.delete_pf(session, fip, pf)
    return no_content()

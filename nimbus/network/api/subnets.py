"""/v2.0/subnets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import networks, quotas, standard
from nimbus.network import subnets as logic
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.errors import not_found
from nimbus.web.responses import no_content

router = APIRouter()


async def _network_owner(session: Any, c: Caller, network_id: str) -> str:
    from nimbus.network.models import Network

    net = await session.get(Network, network_id)
    return net.project_id if net is not None else ""


@router.post("/v2.0/subnets", status_code=201)
async def create_subnets(body: dict[str, Any] = Body(...),
                         c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "subnet", "subnets")
    rows = []
    async with c.svc.db.transaction() as session:
        for item in items:
            data = v.parse(logic.SPEC, item, "subnet", "create")
            project = networks.project_for(c.ctx, data)
            net = await networks.get(session, c.ctx, data["network_id"], lock=True)
            target = {"project_id": project, "network:project_id": net.project_id}
            c.enforce_attrs("create", "subnet", data, target)
            await quotas.check(session, project, "subnet")
            rows.append(await logic.create(session, c.svc, c.ctx, net, data, project))
        bodies = await logic.render_many(session, rows)
    c.changed()
    for b in bodies:
        await notify(c, "subnet.create.end", "subnet", b)
    for network_id in {b["network_id"] for b in bodies}:
        await c.svc.subnets_changed(network_id)
    return created("subnet", "subnets", bodies, bulk)


@router.get("/v2.0/subnets")
async def list_subnets(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
        bodies = await logic.render_many(session, rows)
    return listed(c, "subnets", rows, more, params, bodies)


@router.get("/v2.0/subnets/{subnet_id}")
async def show_subnet(subnet_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        subnet = await logic.get(session, c.ctx, subnet_id)
        body = (await logic.render_many(session, [subnet]))[0]
    return shown(c, "subnet", body)


@router.put("/v2.0/subnets/{subnet_id}")
async def update_subnet(subnet_id: str, body: dict[str, Any] = Body(...),
                        c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.SPEC, resource_body(body, "subnet"), "subnet", "update")
    async with c.svc.db.transaction() as session:
        subnet = await logic.get(session, c.ctx, subnet_id)
        owner = await _network_owner(session, c, subnet.network_id)
        c.enforce_attrs("update", "subnet", data, {"project_id": subnet.project_id,
                                                    "network:project_id": owner})
        standard.check_if_match(subnet, c.if_match())
        await logic.update(session, subnet, data)
        await session.flush()
        out = (await logic.render_many(session, [subnet]))[0]
    c.changed()
    await notify(c, "subnet.update.end", "subnet", out)
    await c.svc.subnets_changed(out["network_id"])
    return shown(c, "subnet", out)


@router.delete("/v2.0/subnets/{subnet_id}", status_code=204)
async def delete_subnet(subnet_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        subnet = await logic.get(session, c.ctx, subnet_id)
        owner = await _network_owner(session, c, subnet.network_id)
        if not c.allowed("delete_subnet", {"project_id": subnet.project_id,
                                           "network:project_id": owner}):
            if subnet.project_id != c.project_id and owner != c.project_id:
                raise not_found("subnet", subnet_id)
            c.enforce("delete_subnet", {"project_id": subnet.project_id})
        await logic.delete_subnet(session, subnet)
    c.changed()
    await notify(c, "subnet.delete.end", "subnet", {"id": subnet_id,
                                                    "network_id": subnet.network_id})
    return no_content()

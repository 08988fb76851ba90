"""/v2.0/networks."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from fastapi import APIRouter, Body, Depends
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from nimbus.network import networks as logic
from nimbus.network import quotas
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.errors import conflict
from nimbus.web.responses import no_content

router = APIRouter()
ATTEMPTS = 10


def _target(net: Any) -> dict[str, Any]:
    return {"project_id": net.project_id, "network:project_id": net.project_id}


@router.post("/v2.0/networks", status_code=201)
async def create_networks(body: dict[str, Any] = Body(...),
                          c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "network", "networks")
    parsed = [v.parse(logic.SPEC, item, "network", "create") for item in items]
    for attempt in range(ATTEMPTS):
        try:
            bodies = await _create(c, [dict(d) for d in parsed])
            break
        except IntegrityError:
            # Another request took the same segmentation id meanwhile: choose again, a little
            # later so that a burst of creates spreads out.
            if attempt == ATTEMPTS - 1:
                raise conflict("The network could not be created because of concurrent "
                               "changes; try again.", "HTTPConflict") from None
            await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    c.changed()
    for b in bodies:
        await notify(c, "network.create.end", "network", b)
    return created("network", "networks", bodies, bulk)


async def _create(c: Caller, parsed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    async with c.svc.db.transaction() as session:
        for data in parsed:
            project = logic.project_for(c.ctx, data)
            c.enforce_attrs("create", "network", data, {"project_id": project})
            await quotas.check(session, project, "network")
            rows.append(await logic.create(session, c.svc, c.ctx, data, project))
        await session.flush()
        ex = await logic.extras(session, c.ctx, rows)
        hidden = c.hidden("network")
        return [logic.render(n, ex, hidden) for n in rows]


@router.get("/v2.0/networks")
async def list_networks(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
        ex = await logic.extras(session, c.ctx, rows)
    hidden = c.hidden("network")
    return listed(c, "networks", rows, more, params,
                  [logic.render(n, ex, hidden) for n in rows])


@router.get("/v2.0/networks/{network_id}")
async def show_network(network_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        net = await logic.get(session, c.ctx, network_id)
        ex = await logic.extras(session, c.ctx, [net])
    return shown(c, "network", logic.render(net, ex, c.hidden("network")))


@router.put("/v2.0/networks/{network_id}")
async def update_network(network_id: str, body: dict[str, Any] = Body(...),
                         c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.SPEC, resource_body(body, "network"), "network", "update")
    async with c.svc.db.transaction() as session:
        net = await logic.get(session, c.ctx, network_id, lock=True)
        c.enforce_attrs("update", "network", data, _target(net))
        from nimbus.network.standard import check_if_match

        check_if_match(net, c.if_match())
        await logic.update(session, c.svc, net, data)
        await session.flush()
        ex = await logic.extras(session, c.ctx, [net])
        out = logic.render(net, ex, c.hidden("network"))
    c.changed()
    await notify(c, "network.update.end", "network", out)
    return shown(c, "network", out)


@router.delete("/v2.0/networks/{network_id}", status_code=204)
async def delete_network(network_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        net = await logic.get(session, c.ctx, network_id)
        c.enforce("delete_network", _target(net))
        await logic.delete_network(session, net)
    c.changed()
    await notify(c, "network.delete.end", "network", {"id": network_id,
                                                      "project_id": net.project_id})
    return no_content()

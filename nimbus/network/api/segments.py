"""/v2.0/segments (the segment extension): a network's segments, admin only by default."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import networks, standard
from nimbus.network import segments as logic
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, caller, resource_body
from nimbus.network.errors import conflict
from nimbus.network.models import Network
from nimbus.web.responses import no_content

router = APIRouter()


def _target(net: Network | None) -> dict[str, Any]:
    project = net.project_id if net is not None else None
    return {"project_id": project, "network:project_id": project}


@router.post("/v2.0/segments", status_code=201)
async def create_segment(body: dict[str, Any] = Body(...),
                         c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.RESOURCE_SPEC, resource_body(body, "segment"), "segment", "create")
    from sqlalchemy.exc import IntegrityError

    for attempt in range(5):
        try:
            async with c.svc.db.transaction() as session:
                net = await networks.get(session, c.ctx, data["network_id"], lock=True)
                c.enforce("create_segment", _target(net))
                row = await logic.create(session, c.svc.settings, net, dict(data))
                out = logic.render(row)
            break
        except IntegrityError:
            # Another request took the same segmentation id meanwhile: choose again.
            if attempt == 4:
                raise conflict("The segment could not be created because of concurrent "
                               "changes; try again.", "HTTPConflict") from None
    c.changed()
    await notify(c, "segment.create.end", "segment", out)
    return created("segment", "segments", [out], False)


@router.get("/v2.0/segments")
async def list_segments(c: Caller = Depends(caller)) -> Response:
    c.enforce("get_segment", {"project_id": None})
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, params)
    return listed(c, "segments", rows, more, params, [logic.render(r) for r in rows])


@router.get("/v2.0/segments/{segment_id}")
async def show_segment(segment_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        row = await logic.get(session, segment_id)
        c.enforce("get_segment", _target(await session.get(Network, row.network_id)))
    return shown(c, "segment", logic.render(row))


@router.put("/v2.0/segments/{segment_id}")
async def update_segment(segment_id: str, body: dict[str, Any] = Body(...),
                         c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.RESOURCE_SPEC, resource_body(body, "segment"), "segment", "update")
    async with c.svc.db.transaction() as session:
        row = await logic.get(session, segment_id)
        c.enforce("update_segment", _target(await session.get(Network, row.network_id)))
        standard.check_if_match(row, c.if_match())
        logic.update(row, data)
        await session.flush()
        out = logic.render(row)
    await notify(c, "segment.update.end", "segment", out)
    return shown(c, "segment", out)


@router.delete("/v2.0/segments/{segment_id}", status_code=204)
async def delete_segment(segment_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await logic.get(session, segment_id)
        c.enforce("delete_segment", _target(await session.get(Network, row.network_id)))
        network_id = row.network_id
        await logic.delete_segment(session, row)
    c.changed()
    await notify(c, "segment.delete.end", "segment", {"id": segment_id,
                                                      "network_id": network_id})
    return no_content()

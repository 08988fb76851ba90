"""/v2.0/auto-allocated-topology/{project_id} (the auto-allocated-topology extension)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from nimbus.network import auto_topology as logic
from nimbus.network.api.base import notify
from nimbus.network.api.common import Caller, caller
from nimbus.network.errors import bad_request, conflict
from nimbus.web.responses import json_response, no_content

router = APIRouter()
PATH = "/v2.0/auto-allocated-topology/{project_id}"


def _project(c: Caller, project_id: str, action: str) -> None:
    if not project_id or len(project_id) > 255:
        raise bad_request(f"Bad auto_allocate request: '{project_id}' is not a valid project "
                          "id.")
    c.enforce(f"{action}_auto_allocated_topology", {"project_id": project_id})


@router.get(PATH)
async def get_topology(project_id: str, c: Caller = Depends(caller)) -> Response:
    _project(c, project_id, "get")
    fields = c.params().fields
    if logic.DRY_RUN in fields:
        async with c.svc.db.session() as session:
            out = await logic.check(session, project_id)
        return json_response({"auto_allocated_topology": out})
    if fields:
        raise bad_request("Bad auto_allocate request: Unrecognized field.")
    for attempt in range(5):
        try:
            async with c.svc.db.transaction() as session:
                network_id, built = await logic.ensure(session, c.svc, project_id)
                made = await logic.bodies(session, c.ctx, built) if built else None
            break
        except IntegrityError:
            # A concurrent first request of this project (or a segmentation id taken
            # meanwhile): read again what it made, or choose again.
            if attempt == 4:
                raise conflict("The topology could not be allocated because of concurrent "
                               "changes; try again.", "HTTPConflict") from None
    if made is not None:
        c.changed()
        await notify(c, "network.create.end", "network", made["network"])
        for subnet in made["subnets"]:
            await notify(c, "subnet.create.end", "subnet", subnet)
        await notify(c, "router.create.end", "router", made["router"])
        for iface in made["interfaces"]:
            await c.svc.notify("router.interface.create", {"router_interface": iface})
        await c.svc.subnets_changed(network_id)
        c.svc.after(c.svc.routers_changed([made["router"]["id"]]))
    return json_response({"auto_allocated_topology": logic.response(network_id, project_id)})


@router.delete(PATH, status_code=204)
async def delete_topology(project_id: str, c: Caller = Depends(caller)) -> Response:
    _project(c, project_id, "delete")
    async with c.svc.db.transaction() as session:
        removed = await logic.remove(session, project_id)
    if removed is not None:
        c.changed()
        for iface in removed.interfaces:
            await c.svc.notify("router.interface.delete", {"router_interface": iface})
        if removed.router_id:
            await notify(c, "router.delete.end", "router", {"id": removed.router_id})
            c.svc.after(c.svc.routers_changed([removed.router_id]))
        if removed.network_id:
            await notify(c, "network.delete.end", "network", {"id": removed.network_id,
                                                              "project_id": project_id})
    return no_content()

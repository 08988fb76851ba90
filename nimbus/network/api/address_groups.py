"""/v2.0/address-groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import address_groups as logic
from nimbus.network import networks
from nimbus.network import validators as v
from nimbus.network.api.base import listed, notify, shown
from nimbus.network.api.common import Caller, caller, resource_body
from nimbus.network.errors import bad_request
from nimbus.web.responses import json_response, no_content

router = APIRouter()


@router.post("/v2.0/address-groups", status_code=201)
async def create_group(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.SPEC, resource_body(body, "address_group"), "address_group", "create")
    project = networks.project_for(c.ctx, data)
    c.enforce("create_address_group", {"project_id": project})
    async with c.svc.db.transaction() as session:
        out = logic.render(await logic.create(session, data, project))
    await notify(c, "address_group.create.end", "address_group", out)
    return json_response({"address_group": out}, 201)


@router.get("/v2.0/address-groups")
async def list_groups(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
    return listed(c, "address_groups", rows, more, params, [logic.render(r) for r in rows])


@router.get("/v2.0/address-groups/{group_id}")
async def show_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        row = await logic.get(session, c.ctx, group_id)
    return shown(c, "address_group", logic.render(row))


@router.put("/v2.0/address-groups/{group_id}")
async def update_group(group_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    data = v.parse(logic.SPEC, resource_body(body, "address_group"), "address_group", "update")
    async with c.svc.db.transaction() as session:
        row = await logic.get(session, c.ctx, group_id)
        c.enforce("update_address_group", {"project_id": row.project_id})
        for key in ("name", "description"):
            if key in data:
                setattr(row, key, data[key] or "")
        row.revision_number += 1
        out = logic.render(row)
    return shown(c, "address_group", out)


async def _change(group_id: str, body: dict[str, Any], c: Caller, add: bool) -> Response:
    if not isinstance(body, dict) or set(body) != {"addresses"}:
        raise bad_request("Invalid input: the body must be {\"addresses\": [...]}.")
    wanted = logic.addresses(body["addresses"], "addresses")
    async with c.svc.db.transaction() as session:
        row = await logic.get(session, c.ctx, group_id)
        c.enforce("update_address_group", {"project_id": row.project_id})
        logic.change(row, wanted, add)
        out = logic.render(row)
    await c.svc.security_groups_changed([])
    return json_response({"address_group": out})


@router.put("/v2.0/address-groups/{group_id}/add_addresses")
async def add_addresses(group_id: str, body: dict[str, Any] = Body(...),
                        c: Caller = Depends(caller)) -> Response:
    return await _change(group_id, body, c, True)


@router.put("/v2.0/address-groups/{group_id}/remove_addresses")
async def remove_addresses(group_id: str, body: dict[str, Any] = Body(...),
                           c: Caller = Depends(caller)) -> Response:
    return await _change(group_id, body, c, False)


@router.delete("/v2.0/address-groups/{group_id}", status_code=204)
async def delete_group(group_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await logic.get(session, c.ctx, group_id)
        c.enforce("delete_address_group", {"project_id": row.project_id})
        await logic.delete_group(session, row)
    return no_content()

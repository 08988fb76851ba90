"""/resource_providers/{uuid}/inventories: the whole set, and one class at a time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import errors, providers
from nimbus.placement import inventories as logic
from nimbus.placement import schema as s
from nimbus.placement.api.common import Caller, caller, no_content, require_provider
from nimbus.placement.api.resource_providers import _body
from nimbus.web.errors import BadRequest, Conflict, NotFound

router = APIRouter()
BASE = "/resource_providers/{uuid}/inventories"


def _one(data: dict[str, Any], generation: int) -> dict[str, Any]:
    return {**logic.render(data), "resource_provider_generation": generation}


async def _write(c: Caller, uuid: str, change: Any) -> tuple[providers.Provider, int, Any]:
    """Run change(current inventories) -> (wanted, expected generation, extra) and write."""
    try:
        async with c.svc.write() as (session, after):
            rp = await providers.get(session, uuid)
            current = await logic.current_map(session, c.svc.index, rp)
            wanted, generation, extra, in_use = change(rp, current)
            gen = await logic.replace_all(session, after, c.svc.index, rp, generation, wanted,
                                          c.at_least(26), in_use_message=in_use)
    except errors.ConcurrentUpdate:
        raise Conflict("update conflict: Another thread concurrently updated the data. "
                       "Please retry your update", code=errors.CONCURRENT_UPDATE) from None
    return rp, gen, extra


@router.get(BASE)
async def list_inventories(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:inventories:list")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
        rows = await logic.list_rows(session, c.svc.index, rp)
    latest = max((r.updated_at for r in rows.values()), default=None)
    return c.respond({"resource_provider_generation": rp.generation,
                      "inventories": {rc: logic.render(r) for rc, r in rows.items()}},
                     modified=latest)


@router.put(BASE, openapi_extra=_body(s.INVENTORIES_PUT))
async def set_inventories(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:inventories:update")
    await require_provider(c, uuid)
    data = await c.body(s.INVENTORIES_PUT)
    wanted = {rc: logic.with_defaults(inv) for rc, inv in data["inventories"].items()}

    def change(rp: Any, current: Any) -> Any:
        return wanted, data["resource_provider_generation"], None, None

    _, gen, _ = await _write(c, uuid, change)
    return c.respond({"resource_provider_generation": gen,
                      "inventories": {rc: logic.render(inv) for rc, inv in wanted.items()}})


@router.delete(BASE)
async def delete_inventories(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.require(5, status=405)
    c.enforce("resource_providers:inventories:delete")

    def change(rp: Any, current: Any) -> Any:
        return {}, None, None, None

    await _write(c, uuid, change)
    return no_content()


@router.post(BASE, openapi_extra=_body(s.INVENTORY_POST))
async def create_inventory(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:inventories:create")
    await require_provider(c, uuid)
    data = await c.body(s.INVENTORY_POST)
    rc = data["resource_class"]
    record = logic.with_defaults(data)

    def change(rp: Any, current: dict[str, Any]) -> Any:
        if rc in current:
            raise Conflict(f"Update conflict: Inventory for {rc} on resource provider "
                           f"{rp.uuid} already exists.", code=errors.CONCURRENT_UPDATE)
        if rc not in c.svc.index.rc_ids:
            raise BadRequest(f"Unable to create inventory for resource provider {rp.uuid}: "
                             f"No such resource class {rc}.")
        return {**current, rc: record}, None, None, None

    rp, gen, _ = await _write(c, uuid, change)
    return c.respond(_one(record, gen), 201,
                     headers={"location": c.location(f"{BASE.format(uuid=uuid)}/{rc}")})


@router.get(BASE + "/{resource_class}")
async def show_inventory(uuid: str, resource_class: str, c: Caller = Depends(caller)
                         ) -> Response:
    c.enforce("resource_providers:inventories:show")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
        rows = await logic.list_rows(session, c.svc.index, rp)
    row = rows.get(resource_class)
    if row is None:
        raise NotFound(f"No inventory of class {resource_class} for {uuid}")
    return c.respond(_one(logic.render(row), rp.generation), modified=row.updated_at)


@router.put(BASE + "/{resource_class}", openapi_extra=_body(s.INVENTORY_PUT))
async def update_inventory(uuid: str, resource_class: str, c: Caller = Depends(caller)
                           ) -> Response:
    c.enforce("resource_providers:inventories:update")
    await require_provider(c, uuid)
    data = await c.body(s.INVENTORY_PUT)
    record = logic.with_defaults(data)

    def change(rp: Any, current: dict[str, Any]) -> Any:
        if data["resource_provider_generation"] != rp.generation:
            raise errors.generation_conflict()
        if resource_class not in current:
            raise BadRequest(f"No inventory record with resource class for resource provider "
                             f"{rp.uuid}: No inventory of class {resource_class} found.")
        return {**current, resource_class: record}, None, None, None

    _, gen, _ = await _write(c, uuid, change)
    return c.respond(_one(record, gen))


@router.delete(BASE + "/{resource_class}")
async def delete_inventory(uuid: str, resource_class: str, c: Caller = Depends(caller)
                           ) -> Response:
    c.enforce("resource_providers:inventories:delete")

    def change(rp: Any, current: dict[str, Any]) -> Any:
        if resource_class not in current:
            raise NotFound(f"No inventory of class {resource_class} found for delete: No "
                           f"inventory of class {resource_class} found.")
        rest = {rc: inv for rc, inv in current.items() if rc != resource_class}
        message = (f"Unable to delete inventory of class {resource_class}: Inventory for "
                   f"'{resource_class}' on resource provider '{rp.uuid}' in use.")
        return rest, None, None, message

    await _write(c, uuid, change)
    return no_content()

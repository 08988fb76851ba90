"""/resource_providers: create, list (with filters), show, update and delete providers."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import errors, providers
from nimbus.placement import schema as s
from nimbus.placement.api.common import (
    Caller,
    caller,
    make_group,
    no_content,
    parse_in_tree,
    parse_member_of,
    parse_required,
    parse_resources,
    require_provider,
)
from nimbus.placement.candidates import filter_providers
from nimbus.placement.providers import Provider
from nimbus.web.errors import BadRequest, Conflict

router = APIRouter()


def _body(schema: s.Schema) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


def render(c: Caller, rp: Provider) -> dict[str, Any]:
    url = f"{c.prefix}/resource_providers/{rp.uuid}"
    rels = ["inventories", "usages"]
    if c.at_least(1):
        rels.append("aggregates")
    if c.at_least(6):
        rels.append("traits")
    if c.at_least(11):
        rels.append("allocations")
    out: dict[str, Any] = {
        "uuid": rp.uuid, "name": rp.name, "generation": rp.generation,
        "links": [{"rel": "self", "href": url},
                  *({"rel": rel, "href": f"{url}/{rel}"} for rel in rels)],
    }
    if c.at_least(14):
        out["parent_provider_uuid"] = rp.parent_provider_uuid
        out["root_provider_uuid"] = rp.root_provider_uuid
    return out


def _check_uuid(text: str | None) -> str | None:
    return str(uuidlib.UUID(text)) if text else None


@router.post("/resource_providers", openapi_extra=_body(s.PROVIDER_POST_1_14))
async def create_provider(c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:create")
    data = await c.body(s.PROVIDER_POST_1_14 if c.at_least(14) else s.PROVIDER_POST)
    async with c.svc.write() as (session, after):
        rp = await providers.create(session, after, c.svc.index, data["name"],
                                    _check_uuid(data.get("uuid")),
                                    data.get("parent_provider_uuid"))
    location = c.location(f"/resource_providers/{rp.uuid}")
    if c.at_least(20):
        return c.respond(render(c, rp), modified=rp.updated_at,
                         headers={"location": location})
    return Response(status_code=201, headers={"location": location})


_LIST_PARAMS = [(0, {"name", "uuid"}), (3, {"member_of"}), (4, {"resources"}),
                (14, {"in_tree"}), (18, {"required"})]


@router.get("/resource_providers")
async def list_providers(c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:list")
    allowed = {k for minor, keys in _LIST_PARAMS if c.at_least(minor) for k in keys}
    q = c.query(allowed)
    for key, values in q.items():
        if len(values) > 1 and key not in ("member_of", "required"):
            q[key] = values[-1:]
    if "uuid" in q and not s.is_uuid(q["uuid"][0]):
        raise BadRequest("Invalid query string parameters: "
                         f"{q['uuid'][0]!r} is not a 'uuid'")
    ids: set[int] | None = None
    if any(k in q for k in ("member_of", "resources", "in_tree", "required")):
        index = await c.svc.fresh_index()
        member_of, bad_aggs = parse_member_of(q.get("member_of", []), c)
        required, forbidden = parse_required(q["required"], c) if "required" in q \
            else ([], set())
        resources = parse_resources(q["resources"][0]) if "resources" in q else {}
        in_tree = parse_in_tree(q["in_tree"][0]) if "in_tree" in q else None
        group = make_group(c, index, "", resources=resources, required=required,
                           forbidden=forbidden, member_of=member_of, forbidden_aggs=bad_aggs,
                           in_tree=in_tree, trait_error='Invalid trait(s) in "required" '
                           'parameter: ')
        ids = filter_providers(index, group)
    async with c.svc.db.session() as session:
        found = await providers.list_by_ids(
            session, ids, name=q.get("name", [None])[0], uuid=q.get("uuid", [None])[0])
    latest = max((rp.updated_at for rp in found), default=None)
    return c.respond({"resource_providers": [render(c, rp) for rp in found]}, modified=latest)


@router.get("/resource_providers/{uuid}")
async def show_provider(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:show")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
    return c.respond(render(c, rp), modified=rp.updated_at)


@router.put("/resource_providers/{uuid}", openapi_extra=_body(s.PROVIDER_PUT_1_14))
async def update_provider(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:update")
    await require_provider(c, uuid)
    data = await c.body(s.PROVIDER_PUT_1_14 if c.at_least(14) else s.PROVIDER_PUT)
    async with c.svc.write() as (session, after):
        rp = await providers.get(session, uuid)
        rp = await providers.update_provider(session, after, c.svc.index, rp, data,
                                             allow_reparent=c.at_least(37))
    return c.respond(render(c, rp), modified=rp.updated_at)


@router.delete("/resource_providers/{uuid}")
async def delete_provider(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:delete")
    try:
        async with c.svc.write() as (session, after):
            rp = await providers.find(session, uuid)
            if rp is None:
                raise errors.provider_not_found(uuid)
            await providers.delete_provider(session, after, c.svc.index, rp)
    except errors.ConcurrentUpdate:
        raise Conflict(f"Unable to delete resource provider {uuid}: it was changed by "
                       "another request; please retry.", code=errors.CONCURRENT_UPDATE) from None
    return no_content()

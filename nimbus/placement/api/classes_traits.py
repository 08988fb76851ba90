"""/resource_classes and /traits, and /resource_providers/{uuid}/traits."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import errors, providers, traits
from nimbus.placement import resource_classes as classes
from nimbus.placement import schema as s
from nimbus.placement.api.common import Caller, caller, no_content, require_provider
from nimbus.placement.api.resource_providers import _body
from nimbus.web.errors import BadRequest, Conflict, NotFound

router = APIRouter()


def _rc(c: Caller, name: str) -> dict[str, object]:
    return {"name": name, "links": [{"rel": "self",
                                     "href": f"{c.prefix}/resource_classes/{name}"}]}


@router.get("/resource_classes")
async def list_classes(c: Caller = Depends(caller)) -> Response:
    c.require(2)
    c.enforce("resource_classes:list")
    async with c.svc.db.session() as session:
        names = await classes.list_names(session)
    return c.respond({"resource_classes": [_rc(c, n) for n in names]})


@router.post("/resource_classes", openapi_extra=_body(s.RESOURCE_CLASS))
async def create_class(c: Caller = Depends(caller)) -> Response:
    c.require(2)
    c.enforce("resource_classes:create")
    data = await c.body(s.RESOURCE_CLASS)
    async with c.svc.write() as (session, after):
        await classes.create(session, after, c.svc.index, data["name"])
    return Response(status_code=201, headers={
        "location": c.location(f"/resource_classes/{data['name']}")})


@router.get("/resource_classes/{name}")
async def show_class(name: str, c: Caller = Depends(caller)) -> Response:
    c.require(2)
    c.enforce("resource_classes:show")
    async with c.svc.db.session() as session:
        row = await classes.get(session, name)
    return c.respond(_rc(c, row.name), modified=row.updated_at)


@router.put("/resource_classes/{name}", openapi_extra=_body(s.RESOURCE_CLASS))
async def put_class(name: str, c: Caller = Depends(caller)) -> Response:
    c.require(2)
    c.enforce("resource_classes:update")
    if c.at_least(7):
        if not name.startswith("CUSTOM_") or not s.is_custom_name(name):
            raise BadRequest(f"JSON does not validate: {name!r} does not match "
                             f"{s.CUSTOM_PATTERN!r}")
        async with c.svc.write() as (session, after):
            created = await classes.create(session, after, c.svc.index, name, exist_ok=True)
        if created:
            return Response(status_code=201, headers={
                "location": c.location(f"/resource_classes/{name}")})
        return no_content()
    data = await c.body(s.RESOURCE_CLASS)
    async with c.svc.write() as (session, after):
        await classes.rename(session, after, c.svc.index, name, data["name"])
    return c.respond(_rc(c, data["name"]))


@router.delete("/resource_classes/{name}")
async def delete_class(name: str, c: Caller = Depends(caller)) -> Response:
    c.require(2)
    c.enforce("resource_classes:delete")
    async with c.svc.write() as (session, after):
        await classes.remove(session, after, c.svc.index, name)
    return no_content()


# -- traits ------------------------------------------------------------------------------------
@router.get("/traits")
async def list_traits(c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("traits:list")
    q = c.query({"name", "associated"})
    associated: bool | None = None
    if "associated" in q:
        value = q["associated"][-1].lower()
        if value not in ("true", "false"):
            raise BadRequest("The query parameter \"associated\" only accepts \"true\" or "
                             f"\"false\". Got: {q['associated'][-1]}")
        associated = value == "true"
    async with c.svc.db.session() as session:
        names = await traits.list_names(session, q.get("name", [None])[-1], associated)
    return c.respond({"traits": names})


@router.get("/traits/{name}")
async def show_trait(name: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("traits:show")
    async with c.svc.db.session() as session:
        if not await traits.exists_named(session, name):
            raise NotFound(f"No such trait(s): {name}.")
    return no_content()


@router.put("/traits/{name}")
async def put_trait(name: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("traits:update")
    if not s.is_custom_name(name):
        raise BadRequest("The trait is invalid. A valid trait must be no longer than 255 "
                         "characters, start with the prefix \"CUSTOM_\" and use following "
                         "characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"")
    async with c.svc.write() as (session, after):
        created = await traits.create(session, after, c.svc.index, name)
    headers = {"location": c.location(f"/traits/{name}")}
    return Response(status_code=201 if created else 204, headers=headers)


@router.delete("/traits/{name}")
async def delete_trait(name: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("traits:delete")
    async with c.svc.write() as (session, after):
        await traits.remove(session, after, c.svc.index, name)
    return no_content()


# -- provider traits ---------------------------------------------------------------------------
RP_TRAITS = "/resource_providers/{uuid}/traits"


@router.get(RP_TRAITS)
async def provider_traits(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("resource_providers:traits:list")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
        names = await traits.of_provider(session, rp)
    return c.respond({"traits": names, "resource_provider_generation": rp.generation})


@router.put(RP_TRAITS, openapi_extra=_body(s.PROVIDER_TRAITS))
async def set_provider_traits(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("resource_providers:traits:update")
    await require_provider(c, uuid)
    data = await c.body(s.PROVIDER_TRAITS)
    try:
        async with c.svc.write() as (session, after):
            rp = await providers.get(session, uuid)
            gen = await traits.set_for_provider(session, after, c.svc.index, rp,
                                                data["resource_provider_generation"],
                                                data["traits"])
    except errors.ConcurrentUpdate:
        raise Conflict("Resource provider's generation already changed. Please update the "
                       "generation and try again.", code=errors.CONCURRENT_UPDATE) from None
    return c.respond({"traits": sorted(set(data["traits"])),
                      "resource_provider_generation": gen})


@router.delete(RP_TRAITS)
async def clear_provider_traits(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.require(6)
    c.enforce("resource_providers:traits:delete")
    try:
        async with c.svc.write() as (session, after):
            rp = await providers.get(session, uuid)
            await traits.set_for_provider(session, after, c.svc.index, rp, None, [])
    except errors.ConcurrentUpdate:
        raise Conflict("Resource provider's generation already changed. Please update the "
                       "generation and try again.", code=errors.CONCURRENT_UPDATE) from None
    return no_content()

"""/resource_providers/{uuid}/aggregates, /resource_providers/{uuid}/usages and /usages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.placement import aggregates, errors, providers, usages
from nimbus.placement import schema as s
from nimbus.placement.api.common import Caller, caller, require_provider
from nimbus.placement.api.resource_providers import _body
from nimbus.web.errors import BadRequest, Conflict

router = APIRouter()
AGGS = "/resource_providers/{uuid}/aggregates"


def _aggs(c: Caller, uuids: list[str], generation: int) -> dict[str, Any]:
    out: dict[str, Any] = {"aggregates": uuids}
    if c.at_least(19):
        out["resource_provider_generation"] = generation
    return out


@router.get(AGGS)
async def provider_aggregates(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.require(1)
    c.enforce("resource_providers:aggregates:list")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
        uuids = await aggregates.of_provider(session, rp)
    return c.respond(_aggs(c, uuids, rp.generation))


@router.put(AGGS, openapi_extra=_body(s.AGGREGATES_1_19))
async def set_provider_aggregates(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.require(1)
    c.enforce("resource_providers:aggregates:update")
    await require_provider(c, uuid)
    if c.at_least(19):
        data = await c.body(s.AGGREGATES_1_19)
        uuids, generation = data["aggregates"], data["resource_provider_generation"]
    else:
        uuids, generation = await c.body(s.AGGREGATES_1_1), None

    async def work(session: Any, after: Any) -> tuple[list[str], int]:
        rp = await providers.get(session, uuid)
        gen = await aggregates.set_for_provider(session, after, c.svc.index, rp, generation,
                                                uuids)
        return sorted(set(uuids)), gen

    try:
        found, gen = await c.svc.retrying(work, "aggregate update")
    except errors.ConcurrentUpdate:  # pragma: no cover - retrying turns it into a 409
        raise Conflict("update conflict", code=errors.CONCURRENT_UPDATE) from None
    return c.respond(_aggs(c, found, gen))


@router.get("/resource_providers/{uuid}/usages")
async def provider_usages(uuid: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("resource_providers:usages:list")
    async with c.svc.db.session() as session:
        rp = await providers.get(session, uuid)
        used = await usages.of_provider(session, c.svc.index, rp.id)
    return c.respond({"resource_provider_generation": rp.generation, "usages": used})


@router.get("/usages")
async def project_usages(c: Caller = Depends(caller)) -> Response:
    c.require(9)
    c.enforce("usages:list")
    allowed = {"project_id", "user_id"} | ({"consumer_type"} if c.at_least(38) else set())
    q = c.query(allowed)
    if "project_id" not in q:
        raise BadRequest("Invalid query string parameters: 'project_id' is a required "
                         "property")
    values = {k: v[-1] for k, v in q.items()}
    for _key, value in values.items():
        if not 1 <= len(value) <= 255:
            raise BadRequest(f"Invalid query string parameters: {value!r} is "
                             f"{'too short' if not value else 'too long'}")
    ctype = values.get("consumer_type")
    if ctype is not None and ctype not in ("all", "unknown") and \
            not s.validate_rc_name(ctype):
        raise BadRequest(f"Invalid query string parameters: {ctype!r} does not match "
                         f"'{s.RC_PATTERN}|^all|^unknown$'")
    async with c.svc.db.session() as session:
        used = await usages.of_project(session, c.svc.index, values["project_id"],
                                       values.get("user_id"), ctype, by_type=c.at_least(38))
    return c.respond({"usages": used})

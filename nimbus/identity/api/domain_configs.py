"""/v3/domains/{domain_id}/config[/{group}[/{option}]] and the defaults at
/v3/domains/config/default, /v3/domains/config/{group}/default and
/v3/domains/config/{group}/{option}/default."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.responses import Response

from nimbus.identity import domain_configs as logic
from nimbus.identity import projects as project_logic
from nimbus.identity.api.common import Caller, caller
from nimbus.identity.policy import ADMIN_OR_READER
from nimbus.web.errors import ApiError
from nimbus.web.responses import json_response, no_content

router = APIRouter()
POLICY: dict[str, str] = {
    "identity:get_domain_config_default": ADMIN_OR_READER,
    "identity:get_security_compliance_domain_config": "@",
}


class ConfigBody(BaseModel):
    config: dict[str, Any]


def _target(domain_id: str) -> dict[str, Any]:
    return {"target": {"domain_id": domain_id, "domain": {"id": domain_id}}}


# -- defaults (declared first: /v3/domains/config/... is not a domain) --------------------------
@router.api_route("/v3/domains/config/default", methods=["GET", "HEAD"])
async def default_config(c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_domain_config_default")
    return json_response({"config": logic.default_config()})


@router.api_route("/v3/domains/config/{group}/default", methods=["GET", "HEAD"])
async def default_group(group: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_domain_config_default")
    return json_response({"config": logic.default_config(group)})


@router.api_route("/v3/domains/config/{group}/{option}/default", methods=["GET", "HEAD"])
async def default_option(group: str, option: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:get_domain_config_default")
    return json_response({"config": logic.default_config(group, option)})


# -- a domain's config -------------------------------------------------------------------------
@router.put("/v3/domains/{domain_id}/config")
async def create_config(domain_id: str, body: ConfigBody, c: Caller = Depends(caller)) -> Response:
    c.enforce("identity:create_domain_config", _target(domain_id))
    async with c.svc.db.transaction() as session:
        await project_logic.get_domain(session, domain_id)
        config, created = await logic.create_config(session, c.svc, domain_id, body.config)
    return json_response({"config": config}, 201 if created else 200)


async def _show(c: Caller, domain_id: str, group: str | None, option: str | None) -> Response:
    """The domain's existence is checked after policy, so that it does not leak."""
    async with c.svc.db.session() as session:
        missing: ApiError | None = None
        try:
            await project_logic.get_domain(session, domain_id)
        except ApiError as exc:
            missing = exc
        if group == logic.SECURITY_COMPLIANCE:
            c.enforce("identity:get_security_compliance_domain_config", _target(domain_id))
            if missing is not None:
                raise missing
            return json_response({"config": logic.security_compliance(c.svc, domain_id,
                                                                      option)})
        c.enforce("identity:get_domain_config", _target(domain_id))
        if missing is not None:
            raise missing
        config = await logic.get_config(session, domain_id, group, option)
    return json_response({"config": config})


async def _update(c: Caller, domain_id: str, body: ConfigBody, group: str | None,
                  option: str | None) -> Response:
    c.enforce("identity:update_domain_config", _target(domain_id))
    async with c.svc.db.transaction() as session:
        await project_logic.get_domain(session, domain_id)
        config = await logic.update_config(session, c.svc, domain_id, body.config, group,
                                           option)
    return json_response({"config": config})


async def _delete(c: Caller, domain_id: str, group: str | None, option: str | None) -> Response:
    c.enforce("identity:delete_domain_config", _target(domain_id))
    async with c.svc.db.transaction() as session:
        await project_logic.get_domain(session, domain_id)
        await logic.delete_config(session, c.svc, domain_id, group, option)
    return no_content()


@router.api_route("/v3/domains/{domain_id}/config", methods=["GET", "HEAD"])
async def show_config(domain_id: str, c: Caller = Depends(caller)) -> Response:
    return await _show(c, domain_id, None, None)


@router.patch("/v3/domains/{domain_id}/config")
async def update_config(domain_id: str, body: ConfigBody, c: Caller = Depends(caller)) -> Response:
    return await _update(c, domain_id, body, None, None)


@router.delete("/v3/domains/{domain_id}/config", status_code=204)
async def delete_config(domain_id: str, c: Caller = Depends(caller)) -> Response:
    return await _delete(c, domain_id, None, None)


@router.api_route("/v3/domains/{domain_id}/config/{group}", methods=["GET", "HEAD"])
async def show_group(domain_id: str, group: str, c: Caller = Depends(caller)) -> Response:
    return await _show(c, domain_id, group, None)


@router.patch("/v3/domains/{domain_id}/config/{group}")
async def update_group(domain_id: str, group: str, body: ConfigBody,
                       c: Caller = Depends(caller)) -> Response:
    return await _update(c, domain_id, body, group, None)


@router.delete("/v3/domains/{domain_id}/config/{group}", status_code=204)
async def delete_group(domain_id: str, group: str, c: Caller = Depends(caller)) -> Response:
    return await _delete(c, domain_id, group, None)


@router.api_route("/v3/domains/{domain_id}/config/{group}/{option}", methods=["GET", "HEAD"])
async def show_option(domain_id: str, group: str, option: str,
                      c: Caller = Depends(caller)) -> Response:
    return await _show(c, domain_id, group, option)


@router.patch("/v3/domains/{domain_id}/config/{group}/{option}")
async def update_option(domain_id: str, group: str, option: str, body: ConfigBody,
                        c: Caller = Depends(caller)) -> Response:
    return await _update(c, domain_id, body, group, option)


@router.delete("/v3/domains/{domain_id}/config/{group}/{option}", status_code=204)
async def delete_option(domain_id: str, group: str, option: str,
                        c: Caller = Depends(caller)) -> Response:
    return await _delete(c, domain_id, group, option)

"""/v2.0/subnetpools, /v2.0/address-scopes and /v2.0/rbac-policies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from nimbus.network import address_scopes, networks, quotas, rbac, standard, subnetpools
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.errors import bad_request
from nimbus.web.responses import json_response, no_content

router = APIRouter()


# -- subnet pools ------------------------------------------------------------------------------
async def _pool_bodies(session: Any, rows: list[Any]) -> list[dict[str, Any]]:
    tags = await standard.tags_of(session, [r.id for r in rows])
    return [subnetpools.render(r, tags) for r in rows]


@router.post("/v2.0/subnetpools", status_code=201)
async def create_pools(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "subnetpool", "subnetpools")
    rows = []
    async with c.svc.db.transaction() as session:
        for item in items:
            data = v.parse(subnetpools.SPEC, item, "subnetpool", "create")
            project = networks.project_for(c.ctx, data)
            c.enforce_attrs("create", "subnetpool", data, {"project_id": project})
            await quotas.check(session, project, "subnetpool")
            rows.append(await subnetpools.create(session, c.ctx, data, project))
        bodies = await _pool_bodies(session, rows)
    for b in bodies:
        await notify(c, "subnetpool.create.end", "subnetpool", b)
    return created("subnetpool", "subnetpools", bodies, bulk)


@router.get("/v2.0/subnetpools")
async def list_pools(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await subnetpools.listing(session, c.ctx, params)
        bodies = await _pool_bodies(session, rows)
    return listed(c, "subnetpools", rows, more, params, bodies)


@router.get("/v2.0/subnetpools/{pool_id}")
async def show_pool(pool_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        row = await subnetpools.get(session, c.ctx, pool_id)
        body = (await _pool_bodies(session, [row]))[0]
    return shown(c, "subnetpool", body)


@router.put("/v2.0/subnetpools/{pool_id}")
async def update_pool(pool_id: str, body: dict[str, Any] = Body(...),
                      c: Caller = Depends(caller)) -> Response:
    data = v.parse(subnetpools.SPEC, resource_body(body, "subnetpool"), "subnetpool", "update")
    async with c.svc.db.transaction() as session:
        row = await subnetpools.get(session, c.ctx, pool_id)
        c.enforce_attrs("update", "subnetpool", data, {"project_id": row.project_id})
        standard.check_if_match(row, c.if_match())
        await subnetpools.update(session, c.ctx, row, data)
        await session.flush()
        out = (await _pool_bodies(session, [row]))[0]
    await notify(c, "subnetpool.update.end", "subnetpool", out)
    return shown(c, "subnetpool", out)


async def _prefix_op(pool_id: str, body: dict[str, Any], c: Caller, add: bool) -> Response:
    if not isinstance(body.get("prefixes"), list):
        raise bad_request("Invalid input: the body must be {\"prefixes\": [...]}.")
    prefixes = subnetpools.SPEC["prefixes"].convert(body["prefixes"], "prefixes")
    async with c.svc.db.transaction() as session:
        row = await subnetpools.get(session, c.ctx, pool_id)
        c.enforce("update_subnetpool", {"project_id": row.project_id})
        if add:
            await subnetpools.update(session, c.ctx, row,
                                     {"prefixes": [*row.prefixes, *prefixes]})
        else:
            await subnetpools.remove_prefixes(session, row, prefixes)
        out = list(row.prefixes)
    return json_response({"prefixes": out})


@router.put("/v2.0/subnetpools/{pool_id}/add_prefixes")
async def add_prefixes(pool_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    return await _prefix_op(pool_id, body, c, True)


@router.put("/v2.0/subnetpools/{pool_id}/remove_prefixes")
async def remove_prefixes(pool_id: str, body: dict[str, Any] = Body(...),
                          c: Caller = Depends(caller)) -> Response:
    return await _prefix_op(pool_id, body, c, False)


@router.delete("/v2.0/subnetpools/{pool_id}", status_code=204)
async def delete_pool(pool_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await subnetpools.get(session, c.ctx, pool_id)
        c.enforce("delete_subnetpool", {"project_id": row.project_id})
        await subnetpools.delete_pool(session, row)
    await notify(c, "subnetpool.delete.end", "subnetpool", {"id": pool_id})
    return no_content()


# -- address scopes ----------------------------------------------------------------------------
@router.post("/v2.0/address-scopes", status_code=201)
async def create_scope(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    data = v.parse(address_scopes.SPEC, resource_body(body, "address_scope"), "address_scope",
                   "create")
    project = networks.project_for(c.ctx, data)
    c.enforce_attrs("create", "address_scope", data, {"project_id": project})
    async with c.svc.db.transaction() as session:
        row = await address_scopes.create(session, data, project)
        out = address_scopes.render(row)
    await notify(c, "address_scope.create.end", "address_scope", out)
    return json_response({"address_scope": out}, 201)


@router.get("/v2.0/address-scopes")
async def list_scopes(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await address_scopes.listing(session, c.ctx, params)
    return listed(c, "address_scopes", rows, more, params,
                  [address_scopes.render(r) for r in rows])


@router.get("/v2.0/address-scopes/{scope_id}")
async def show_scope(scope_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        row = await address_scopes.get(session, c.ctx, scope_id)
    return shown(c, "address_scope", address_scopes.render(row))


@router.put("/v2.0/address-scopes/{scope_id}")
async def update_scope(scope_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    data = v.parse(address_scopes.SPEC, resource_body(body, "address_scope"), "address_scope",
                   "update")
    async with c.svc.db.transaction() as session:
        row = await address_scopes.get(session, c.ctx, scope_id)
        c.enforce_attrs("update", "address_scope", data, {"project_id": row.project_id})
        await address_scopes.update(session, row, data)
        await session.flush()
        out = address_scopes.render(row)
    return shown(c, "address_scope", out)


@router.delete("/v2.0/address-scopes/{scope_id}", status_code=204)
async def delete_scope(scope_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await address_scopes.get(session, c.ctx, scope_id)
        c.enforce("delete_address_scope", {"project_id": row.project_id})
        await address_scopes.delete_scope(session, row)
    return no_content()


# -- RBAC policies -----------------------------------------------------------------------------
@router.post("/v2.0/rbac-policies", status_code=201)
async def create_rbac(body: dict[str, Any] = Body(...), c: Caller = Depends(caller)) -> Response:
    data = v.parse(rbac.SPEC, resource_body(body, "rbac_policy"), "rbac_policy", "create")
    project = networks.project_for(c.ctx, data)
    c.enforce("create_rbac_policy", {"project_id": project})
    if data.get("target_project", data["target_tenant"]) == "*":
        c.enforce("create_rbac_policy:target_tenant", {"project_id": project})
    async with c.svc.db.transaction() as session:
        await quotas.check(session, project, "rbac_policy")
        row = await rbac.create(session, c.ctx, data, project)
        out = rbac.render(row)
    await notify(c, "rbac_policy.create.end", "rbac_policy", out)
    return json_response({"rbac_policy": out}, 201)


@router.get("/v2.0/rbac-policies")
async def list_rbac(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await rbac.listing(session, c.ctx, params)
    return listed(c, "rbac_policies", rows, more, params, [rbac.render(r) for r in rows])


@router.get("/v2.0/rbac-policies/{policy_id}")
async def show_rbac(policy_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        row = await rbac.get(session, c.ctx, policy_id)
    return shown(c, "rbac_policy", rbac.render(row))


@router.put("/v2.0/rbac-policies/{policy_id}")
async def update_rbac(policy_id: str, body: dict[str, Any] = Body(...),
                      c: Caller = Depends(caller)) -> Response:
    inner = resource_body(body, "rbac_policy")
    data = v.parse({k: rbac.SPEC[k] for k in ("target_tenant", "target_project")}, inner,
                   "rbac_policy", "update")
    async with c.svc.db.transaction() as session:
        row = await rbac.get(session, c.ctx, policy_id)
        c.enforce("update_rbac_policy", {"project_id": row.project_id})
        if data.get("target_project", data.get("target_tenant")) == "*":
            c.enforce("create_rbac_policy:target_tenant", {"project_id": row.project_id})
        await rbac.update(session, row, data)
        out = rbac.render(row)
    return shown(c, "rbac_policy", out)


@router.delete("/v2.0/rbac-policies/{policy_id}", status_code=204)
async def delete_rbac(policy_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await rbac.get(session, c.ctx, policy_id)
        c.enforce("delete_rbac_policy", {"project_id": row.project_id})
        await rbac.delete_policy(session, row)
    return no_content()

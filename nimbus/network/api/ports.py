"""/v2.0/ports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from nimbus.network import networks, quotas, security_groups, standard
from nimbus.network import ports as logic
from nimbus.network import validators as v
from nimbus.network.api.base import created, listed, notify, shown
from nimbus.network.api.common import Caller, bulk_bodies, caller, resource_body
from nimbus.network.errors import conflict
from nimbus.network.models import Network
from nimbus.network.plancache import Reads
from nimbus.network.port_attrs import SPEC
from nimbus.web.responses import no_content

router = APIRouter()


def _target(port: Any, net_owner: str) -> dict[str, Any]:
    return {"project_id": port.project_id, "network:project_id": net_owner}


def _check_create_attrs(c: Caller, data: dict[str, Any], target: dict[str, Any]) -> None:
    c.enforce("create_port", target)
    for name in data:
        if name == "fixed_ips":
            if any("ip_address" in f for f in data["fixed_ips"]):
                c.enforce("create_port:fixed_ips:ip_address", target)
            continue
        if name == "device_owner" and not str(data[name]).startswith("network:"):
            continue
        rule = f"create_port:{name}"
        if rule in c.svc.enforcer.texts:
            c.enforce(rule, target)


@router.post("/v2.0/ports", status_code=201)
async def create_ports(body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    items, bulk = bulk_bodies(body, "port", "ports")
    parsed = [v.parse(SPEC, item, "port", "create") for item in items]
    for attempt in range(3):
        try:
            rows = await _create(c, [dict(d) for d in parsed], blind=attempt == 0)
            break
        except IntegrityError:
            # A generated MAC or a blindly picked address clashed, or the network went away
            # meanwhile: start over, looking this time.
            if attempt:
                c.svc.plans.clear()
            if attempt == 2:
                raise conflict("The port could not be created because of concurrent "
                               "changes; try again.", "HTTPConflict") from None
    ex = logic.fresh_extras(rows, c.svc.settings.dns_domain)
    hidden = c.hidden("port")
    full = [logic.render(p, ex) for p in rows]
    bodies = [logic.render(p, ex, hidden) for p in rows] if hidden else full
    for b in bodies:
        await notify(c, "port.create.end", "port", b)
    c.svc.after(c.svc.ports_changed(full))
    return created("port", "ports", bodies, bulk)


async def _create(c: Caller, parsed: list[dict[str, Any]], blind: bool) -> list[Any]:
    plans = []
    async with Reads(c.svc.db) as reads:  # outside the write transaction: keep it short
        for data in parsed:
            project = networks.project_for(c.ctx, data)
            net, subnets = await c.svc.plans.network_and_subnets(reads, c.ctx,
                                                                 data["network_id"])
            _check_create_attrs(c, data, {"project_id": project,
                                          "network:project_id": net.project_id})
            limit = await c.svc.plans.limit(reads, project, "port") if project else -1
            sparse = await c.svc.plans.sparse(reads, subnets) if blind and len(parsed) == 1 \
                else frozenset()
            plans.append((data, project, net, subnets, limit, sparse))
    for data, project, *_ in plans:
        if "security_groups" not in data and project not in c.svc.default_groups:
            async with c.svc.db.transaction() as session:
                await security_groups.ensure_default(session, c.svc, project)
    rows = []
    async with c.svc.db.transaction() as session:
        for data, project, net, subnets, limit, sparse in plans:
            await quotas.check(session, project, "port", limit=limit)
            rows.append(await logic.create(session, c.svc, c.ctx, net, data, project,
                                           subnets, sparse))
    return rows


@router.get("/v2.0/ports")
async def list_ports(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, c.ctx, params)
        ex = await logic.extras(session, rows, c.svc.settings.dns_domain)
    hidden = c.hidden("port")
    return listed(c, "ports", rows, more, params, [logic.render(p, ex, hidden) for p in rows])


@router.get("/v2.0/ports/{port_id}")
async def show_port(port_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        port = await logic.get(session, c.ctx, port_id)
        ex = await logic.extras(session, [port], c.svc.settings.dns_domain)
    return shown(c, "port", logic.render(port, ex, c.hidden("port")))


@router.put("/v2.0/ports/{port_id}")
async def update_port(port_id: str, body: dict[str, Any] = Body(...),
                      c: Caller = Depends(caller)) -> Response:
    data = v.parse(SPEC, resource_body(body, "port"), "port", "update")
    async with c.svc.db.transaction() as session:
        port = await logic.get(session, c.ctx, port_id)
        net = await session.get(Network, port.network_id)
        assert net is not None
        target = _target(port, net.project_id)
        c.enforce("update_port", target)
        for name in data:
            if name == "fixed_ips":
                if any("ip_address" in f for f in data["fixed_ips"]):
                    c.enforce("update_port:fixed_ips:ip_address", target)
                continue
            rule = f"update_port:{name}"
            if rule in c.svc.enforcer.texts:
                c.enforce(rule, target)
        standard.check_if_match(port, c.if_match())
        before = await logic.update(session, c.svc, c.ctx, port, net, data)
        await session.flush()
        ex = await logic.extras(session, [port], c.svc.settings.dns_domain)
        out = logic.render(port, ex, c.hidden("port"))
        full = logic.render(port, ex)
    await notify(c, "port.update.end", "port", out)
    c.svc.after(c.svc.ports_changed([full], before.get("host"), before.get("migrating_to")))
    return shown(c, "port", out)


@router.delete("/v2.0/ports/{port_id}", status_code=204)
async def delete_port(port_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        port = await logic.get(session, c.ctx, port_id)
        net = await session.get(Network, port.network_id)
        c.enforce("delete_port", _target(port, net.project_id if net else ""))
        host, network_id = port.binding_host_id, port.network_id
        await logic.delete_port(session, port)
    await notify(c, "port.delete.end", "port", {"id": port_id, "network_id": network_id})
    c.svc.after(c.svc.port_deleted(port_id, network_id, host))
    return no_content()


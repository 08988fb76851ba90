"""/v2.0/agents (with DHCP and L3 scheduling), availability zones, network IP availability,
service providers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from sqlalchemy import select
from starlette.responses import Response

from nimbus.network import agent_state as logic
from nimbus.network import networks, query, routers
from nimbus.network import validators as v
from nimbus.network.api.base import listed, shown
from nimbus.network.api.common import Caller, caller, resource_body
from nimbus.network.errors import bad_request
from nimbus.network.models import Network, Router
from nimbus.web.responses import json_response, no_content

router = APIRouter()


@router.get("/v2.0/agents")
async def list_agents(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    if not c.allowed("get_agent"):
        return json_response({"agents": []})
    async with c.svc.db.session() as session:
        rows, more = await logic.listing(session, params)
    bodies = [logic.render(c.svc, a) for a in rows]
    if "alive" in params.filters:
        wanted = {query.as_bool(x, "alive") for x in params.filters["alive"]}
        bodies = [b for b in bodies if b["alive"] in wanted]
    return listed(c, "agents", rows, more, params, bodies)


@router.get("/v2.0/agents/{agent_id}")
async def show_agent(agent_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_agent")
    async with c.svc.db.session() as session:
        agent = await logic.get(session, agent_id)
    return shown(c, "agent", logic.render(c.svc, agent))


@router.put("/v2.0/agents/{agent_id}")
async def update_agent(agent_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    c.enforce("update_agent")
    data = logic.check_agent_update(resource_body(body, "agent"))
    async with c.svc.db.transaction() as session:
        agent = await logic.get(session, agent_id)
        if "admin_state_up" in data:
            agent.admin_state_up = v.boolean(data["admin_state_up"], "admin_state_up")
        if "description" in data:
            agent.description = v.nullable(v.name255)(data["description"], "description") or ""
        out = logic.render(c.svc, agent)
    return shown(c, "agent", out)


@router.delete("/v2.0/agents/{agent_id}", status_code=204)
async def delete_agent(agent_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("delete_agent")
    async with c.svc.db.transaction() as session:
        await logic.delete_agent(session, await logic.get(session, agent_id))
    return no_content()


# -- scheduling --------------------------------------------------------------------------------
@router.get("/v2.0/agents/{agent_id}/dhcp-networks")
async def agent_networks(agent_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_dhcp-networks")
    async with c.svc.db.session() as session:
        await logic.get(session, agent_id)
        ids = await logic.bound_ids(session, agent_id, "dhcp")
        nets = list((await session.scalars(select(Network).where(Network.id.in_(ids)))).all())
        ex = await networks.extras(session, c.ctx, nets)
    return json_response({"networks": [networks.render(n, ex) for n in nets]})


@router.post("/v2.0/agents/{agent_id}/dhcp-networks", status_code=201)
async def add_network(agent_id: str, body: dict[str, Any] = Body(...),
                      c: Caller = Depends(caller)) -> Response:
    c.enforce("create_dhcp-network")
    if "network_id" not in body:
        raise bad_request("network_id is required")
    async with c.svc.db.transaction() as session:
        agent = await logic.get(session, agent_id)
        await networks.get(session, c.ctx, v.check_uuid(body["network_id"], "network_id"))
        await logic.bind(session, agent, body["network_id"], "dhcp")
    c.svc.dhcp_hosts.clear()
    return json_response(None, 201)


@router.delete("/v2.0/agents/{agent_id}/dhcp-networks/{network_id}", status_code=204)
async def remove_network(agent_id: str, network_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("delete_dhcp-network")
    async with c.svc.db.transaction() as session:
        await logic.unbind(session, await logic.get(session, agent_id), network_id, "dhcp")
    c.svc.dhcp_hosts.clear()
    return no_content()


@router.get("/v2.0/networks/{network_id}/dhcp-agents")
async def network_agents(network_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_dhcp-agents")
    async with c.svc.db.session() as session:
        await networks.get(session, c.ctx, network_id)
        rows = await logic.agents_for(session, network_id, "dhcp")
    return json_response({"agents": [logic.render(c.svc, a) for a in rows]})


@router.get("/v2.0/agents/{agent_id}/l3-routers")
async def agent_routers(agent_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_l3-routers")
    async with c.svc.db.session() as session:
        await logic.get(session, agent_id)
        ids = await logic.bound_ids(session, agent_id, "l3")
        rows = list((await session.scalars(select(Router).where(Router.id.in_(ids)))).all())
        bodies = await routers.render_many(session, rows)
    return json_response({"routers": bodies})


@router.post("/v2.0/agents/{agent_id}/l3-routers", status_code=201)
async def add_router(agent_id: str, body: dict[str, Any] = Body(...),
                     c: Caller = Depends(caller)) -> Response:
    c.enforce("create_l3-router")
    if "router_id" not in body:
        raise bad_request("router_id is required")
    async with c.svc.db.transaction() as session:
        agent = await logic.get(session, agent_id)
        await routers.get(session, c.ctx, v.check_uuid(body["router_id"], "router_id"))
        await logic.bind(session, agent, body["router_id"], "l3")
    return json_response(None, 201)


@router.delete("/v2.0/agents/{agent_id}/l3-routers/{router_id}", status_code=204)
async def remove_router(agent_id: str, router_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("delete_l3-router")
    async with c.svc.db.transaction() as session:
        await logic.unbind(session, await logic.get(session, agent_id), router_id, "l3")
    return no_content()


@router.get("/v2.0/routers/{router_id}/l3-agents")
async def router_agents(router_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_l3-agents")
    async with c.svc.db.session() as session:
        await routers.get(session, c.ctx, router_id)
        rows = await logic.agents_for(session, router_id, "l3")
    return json_response({"agents": [logic.render(c.svc, a) for a in rows]})


# -- availability zones, IP availability, service providers ------------------------------------
@router.get("/v2.0/availability_zones")
async def list_zones(c: Caller = Depends(caller)) -> Response:
    params = c.params()
    zones = [{"name": "nova", "resource": kind, "state": "available"}
             for kind in ("network", "router")]
    for key in ("name", "resource", "state"):
        if key in params.filters:
            zones = [z for z in zones if z[key] in params.filters[key]]
    return json_response({"availability_zones": zones})


@router.get("/v2.0/network-ip-availabilities")
async def list_availability(c: Caller = Depends(caller)) -> Response:
    c.enforce("get_network_ip_availability")
    params = c.params()
    async with c.svc.db.session() as session:
        q = select(Network)
        for key, column in (("network_id", Network.id), ("network_name", Network.name),
                            ("project_id", Network.project_id)):
            if key in params.filters:
                q = q.where(column.in_(params.filters[key]))
        nets = list((await session.scalars(q.order_by(Network.id))).all())
        out = await logic.ip_availability(session, nets)
    if "ip_version" in params.filters:
        versions = {int(x) for x in params.filters["ip_version"] if x.isdigit()}
        out = [n for n in out if any(s["ip_version"] in versions
                                     for s in n["subnet_ip_availability"])]
    return json_response({"network_ip_availabilities": [query.select_fields(n, params.fields)
                                                        for n in out]})


@router.get("/v2.0/network-ip-availabilities/{network_id}")
async def show_availability(network_id: str, c: Caller = Depends(caller)) -> Response:
    c.enforce("get_network_ip_availability")
    async with c.svc.db.session() as session:
        net = await networks.get(session, c.ctx, network_id)
        out = (await logic.ip_availability(session, [net]))[0]
    return shown(c, "network_ip_availability", out)


@router.get("/v2.0/service-providers")
async def service_providers(c: Caller = Depends(caller)) -> Response:
    return json_response({"service_providers": [
        {"service_type": "L3_ROUTER_NAT", "name": "nimbus", "default": True}]})

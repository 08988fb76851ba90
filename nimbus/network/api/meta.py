"""Version discovery, the extension list, and the tag API shared by every taggable resource."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.requests import Request
from starlette.responses import Response

from nimbus.network import extensions, networks, standard
from nimbus.network.api.common import Caller, caller
from nimbus.network.errors import bad_request, not_found
from nimbus.network.models import (
    AddressScope,
    FloatingIP,
    Network,
    Port,
    Router,
    SecurityGroup,
    Subnet,
    SubnetPool,
)
from nimbus.web.responses import json_response, no_content

router = APIRouter()

RESOURCES = ("subnets", "networks", "ports", "routers", "floatingips", "security-groups",
             "security-group-rules", "subnetpools", "address-scopes", "rbac-policies",
             "quotas", "agents", "availability_zones", "network-ip-availabilities",
             "extensions", "service-providers", "address-groups")
TAGGABLE: dict[str, tuple[Any, str]] = {
    "networks": (Network, "network"), "subnets": (Subnet, "subnet"), "ports": (Port, "port"),
    "routers": (Router, "router"), "floatingips": (FloatingIP, "floatingip"),
    "security-groups": (SecurityGroup, "security_group"),
    "subnetpools": (SubnetPool, "subnetpool"), "address-scopes": (AddressScope,
                                                                  "address_scope"),
}


def _version(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"id": "v2.0", "status": "CURRENT",
            "links": [{"href": f"{base}/v2.0/", "rel": "self"}]}


@router.get("/")
async def versions(request: Request) -> Response:
    return json_response({"versions": [_version(request)]})


@router.get("/v2.0")
@router.get("/v2.0/")
async def resources(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return json_response({"resources": [
        {"name": name.rstrip("s").replace("-", "_"), "collection": name.replace("-", "_"),
         "links": [{"href": f"{base}/v2.0/{name}", "rel": "self"}]} for name in RESOURCES]})


@router.get("/v2.0/extensions")
async def list_extensions(c: Caller = Depends(caller)) -> Response:
    return json_response({"extensions": [extensions.render(a) for a in extensions.aliases()]})


@router.get("/v2.0/extensions/{alias}")
async def show_extension(alias: str, c: Caller = Depends(caller)) -> Response:
    if alias not in extensions.EXTENSIONS:
        from nimbus.web.errors import NotFound

        raise NotFound(f"Extension with alias {alias} does not exist",
                       error_type="HTTPNotFound")
    return json_response({"extension": extensions.render(alias)})


# -- tags --------------------------------------------------------------------------------------
async def _tagged(session: Any, c: Caller, collection: str, resource_id: str,
                  write: bool) -> Any:
    if collection not in TAGGABLE:
        raise not_found(collection.rstrip("s"), resource_id)
    model, kind = TAGGABLE[collection]
    if model is Network:
        row = await networks.get(session, c.ctx, resource_id)
    else:
        row = await session.get(model, resource_id)
        if row is None or not (c.is_admin or row.project_id == c.project_id or
                               getattr(row, "shared", False)):
            raise not_found(kind, resource_id)
    if write:
        c.enforce(f"update_{kind}", {"project_id": row.project_id,
                                     "network:project_id": row.project_id})
    return row


@router.get("/v2.0/{collection}/{resource_id}/tags")
async def list_tags(collection: str, resource_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        await _tagged(session, c, collection, resource_id, False)
        tags = (await standard.tags_of(session, [resource_id]))[resource_id]
    return json_response({"tags": tags})


@router.put("/v2.0/{collection}/{resource_id}/tags")
async def replace_tags(collection: str, resource_id: str, body: dict[str, Any] = Body(...),
                       c: Caller = Depends(caller)) -> Response:
    if set(body) != {"tags"}:
        raise bad_request("Invalid input: the body must be {\"tags\": [...]}.")
    tags = standard.validate_tags(body["tags"])
    async with c.svc.db.transaction() as session:
        row = await _tagged(session, c, collection, resource_id, True)
        await standard.set_tags(session, resource_id, tags)
        standard.bump(row)
    return json_response({"tags": tags})


@router.delete("/v2.0/{collection}/{resource_id}/tags", status_code=204)
async def clear_tags(collection: str, resource_id: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await _tagged(session, c, collection, resource_id, True)
        await standard.set_tags(session, resource_id, [])
        standard.bump(row)
    return no_content()


@router.get("/v2.0/{collection}/{resource_id}/tags/{tag}", status_code=204)
async def check_tag(collection: str, resource_id: str, tag: str,
                    c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        await _tagged(session, c, collection, resource_id, False)
        tags = (await standard.tags_of(session, [resource_id]))[resource_id]
    if tag not in tags:
        from nimbus.web.errors import NotFound

        raise NotFound(f"Tag {tag} could not be found for {collection.rstrip('s')} "
                       f"{resource_id}.", error_type="TagNotFound")
    return no_content()


@router.put("/v2.0/{collection}/{resource_id}/tags/{tag}", status_code=201)
async def add_tag(collection: str, resource_id: str, tag: str,
                  c: Caller = Depends(caller)) -> Response:
    standard.validate_tags([tag])
    async with c.svc.db.transaction() as session:
        row = await _tagged(session, c, collection, resource_id, True)
        tags = (await standard.tags_of(session, [resource_id]))[resource_id]
        if tag not in tags:
            await standard.set_tags(session, resource_id, [*tags, tag])
            standard.bump(row)
    return Response(status_code=201)


@router.delete("/v2.0/{collection}/{resource_id}/tags/{tag}", status_code=204)
async def remove_tag(collection: str, resource_id: str, tag: str,
                     c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        row = await _tagged(session, c, collection, resource_id, True)
        tags = (await standard.tags_of(session, [resource_id]))[resource_id]
        if tag not in tags:
            from nimbus.web.errors import NotFound

            raise NotFound(f"Tag {tag} could not be found for {collection.rstrip('s')} "
                           f"{resource_id}.", error_type="TagNotFound")
        await standard.set_tags(session, resource_id, [t for t in tags if t != tag])
        standard.bump(row)
    return no_content()

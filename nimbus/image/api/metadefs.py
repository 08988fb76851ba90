"""/v2/metadefs: namespaces and their resource types, properties, objects and tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from nimbus.image import metadefs as logic
from nimbus.image.api.common import Caller, caller
from nimbus.web.errors import BadRequest
from nimbus.web.responses import json_response, no_content

router = APIRouter()
NS = "/v2/metadefs/namespaces/{namespace}"
ADMIN_RULE = "image:modify_metadef_namespace"


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}}}}


NAMED = _body({"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}}})
NAMESPACE = _body({"type": "object", "required": ["namespace"], "properties": {
    "namespace": {"type": "string"}, "display_name": {"type": "string"},
    "description": {"type": "string"}, "protected": {"type": "boolean"},
    "visibility": {"type": "string", "enum": ["public", "private"]}}})
PROPERTY = _body({"type": "object", "required": ["name", "title", "type"], "properties": {
    "name": {"type": "string"}, "title": {"type": "string"},
    "type": {"type": "string", "enum": list(logic.PROPERTY_TYPES)}}})
TAGS = _body({"type": "object", "required": ["tags"], "properties": {"tags": {
    "type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}})


async def _object_body(c: Caller) -> dict[str, Any]:
    body = await c.json()
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


# -- resource types ----------------------------------------------------------------------------
@router.get("/v2/metadefs/resource_types")
async def list_resource_types(c: Caller = Depends(caller)) -> Response:
    c.enforce("image:list_metadef_resource_types", c.own_target())
    async with c.svc.db.session() as session:
        return json_response({"resource_types": await logic.resource_types(session)})


@router.get(f"{NS}/resource_types")
async def list_associations(namespace: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response({"resource_type_associations":
                              await logic.associations(session, ns)})


@router.post(f"{NS}/resource_types", status_code=201, openapi_extra=NAMED)
async def associate(namespace: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce("image:add_metadef_resource_type_association", logic.namespace_target(ns))
        out = await logic.associate(session, ns, body)
    return json_response(out, 201)


@router.delete(f"{NS}/resource_types/{{name}}", status_code=204)
async def dissociate(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        logic.writable(c.svc, c.ctx, ns, "image:remove_metadef_resource_type_association")
        await logic.dissociate(session, ns, name)
    return no_content()


# -- namespaces --------------------------------------------------------------------------------
@router.get("/v2/metadefs/namespaces")
async def list_namespaces(c: Caller = Depends(caller), visibility: str | None = None,
                          resource_types: str | None = None) -> Response:
    c.enforce("image:get_metadef_namespaces", c.own_target())
    params = {k: v for k, v in (("visibility", visibility),
                                ("resource_types", resource_types)) if v}
    async with c.svc.db.session() as session:
        rows = await logic.list_namespaces(session, c.ctx, params)
        out = [await logic.render_namespace(session, ns, full=False) for ns in rows]
    return json_response({"namespaces": out, "first": "/v2/metadefs/namespaces",
                          "schema": "/v2/schemas/metadefs/namespaces"})


@router.post("/v2/metadefs/namespaces", status_code=201, openapi_extra=NAMESPACE)
async def create_namespace(c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.create_namespace(session, c.svc, c.ctx, body)
        out = await logic.render_namespace(session, ns, full=True)
    await c.svc.notify("metadef_namespace.create", out)
    return json_response(out, 201)


@router.get(NS)
async def show_namespace(namespace: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response(await logic.render_namespace(session, ns, full=True))


@router.put(NS, openapi_extra=NAMESPACE)
async def update_namespace(namespace: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        await logic.update_namespace(session, c.svc, c.ctx, ns, body)
        await session.flush()
        out = await logic.render_namespace(session, ns, full=False)
    return json_response(out)


@router.delete(NS, status_code=204)
async def delete_namespace(namespace: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        logic.writable(c.svc, c.ctx, ns, "image:delete_metadef_namespace")
        await session.delete(ns)
    return no_content()


@router.delete(f"{NS}/{{what}}", status_code=204)
async def clear_namespace(namespace: str, what: str, c: Caller = Depends(caller)) -> Response:
    if what not in ("objects", "properties", "tags"):
        raise BadRequest(f"Unknown namespace content {what!r}.")
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        logic.writable(c.svc, c.ctx, ns, ADMIN_RULE)
        await logic.clear(session, ns, what)
    return no_content()


# -- properties --------------------------------------------------------------------------------
@router.get(f"{NS}/properties")
async def list_properties(namespace: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response({"properties": await logic.list_properties(session, ns)})


@router.post(f"{NS}/properties", status_code=201, openapi_extra=PROPERTY)
async def create_property(namespace: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        row = await logic.create_property(session, ns, body)
        return json_response(logic.render_property(row), 201)


@router.get(f"{NS}/properties/{{name}}")
async def show_property(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response(logic.render_property(await logic.get_property(session, ns,
                                                                              name)))


@router.put(f"{NS}/properties/{{name}}", openapi_extra=PROPERTY)
async def update_property(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        row = await logic.get_property(session, ns, name)
        await logic.update_property(session, ns, row, body)
        return json_response(logic.render_property(row))


@router.delete(f"{NS}/properties/{{name}}", status_code=204)
async def delete_property(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        logic.writable(c.svc, c.ctx, ns, ADMIN_RULE)
        await session.delete(await logic.get_property(session, ns, name))
    return no_content()


# -- objects -----------------------------------------------------------------------------------
@router.get(f"{NS}/objects")
async def list_objects(namespace: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response({"objects": await logic.list_objects(session, ns),
                              "schema": "/v2/schemas/metadefs/objects"})


@router.post(f"{NS}/objects", status_code=201, openapi_extra=NAMED)
async def create_object(namespace: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        row = await logic.create_object(session, ns, body)
        return json_response(logic.render_object(ns, row), 201)


@router.get(f"{NS}/objects/{{name}}")
async def show_object(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response(logic.render_object(ns, await logic.get_object(session, ns,
                                                                             name)))


@router.put(f"{NS}/objects/{{name}}", openapi_extra=NAMED)
async def update_object(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        row = await logic.get_object(session, ns, name)
        await logic.update_object(session, ns, row, body)
        return json_response(logic.render_object(ns, row))


@router.delete(f"{NS}/objects/{{name}}", status_code=204)
async def delete_object(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        logic.writable(c.svc, c.ctx, ns, ADMIN_RULE)
        await session.delete(await logic.get_object(session, ns, name))
    return no_content()


# -- tags --------------------------------------------------------------------------------------
@router.get(f"{NS}/tags")
async def list_tags(namespace: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        return json_response({"tags": await logic.list_tags(session, ns)})


@router.post(f"{NS}/tags", status_code=201, openapi_extra=TAGS)
async def create_tags(namespace: str, c: Caller = Depends(caller),
                      append: str | None = None) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        tags = await logic.replace_tags(session, ns, body.get("tags"),
                                        append=(append or "").lower() == "true")
    return json_response({"tags": tags}, 201)


@router.post(f"{NS}/tags/{{name}}", status_code=201)
async def create_tag(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        row = await logic.create_tag(session, ns, name)
        return json_response({"name": row.name, **logic.stamps(row)}, 201)


@router.get(f"{NS}/tags/{{name}}")
async def show_tag(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.session() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        row = await logic.get_tag(session, ns, name)
        return json_response({"name": row.name, **logic.stamps(row)})


@router.put(f"{NS}/tags/{{name}}", openapi_extra=NAMED)
async def update_tag(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    body = await _object_body(c)
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        c.enforce(ADMIN_RULE, logic.namespace_target(ns))
        row = await logic.get_tag(session, ns, name)
        new = logic.check_name(body.get("name"), "name", 255)
        if new != row.name:
            await session.delete(row)
            await session.flush()
            row = await logic.create_tag(session, ns, new)
        return json_response({"name": row.name, **logic.stamps(row)})


@router.delete(f"{NS}/tags/{{name}}", status_code=204)
async def delete_tag(namespace: str, name: str, c: Caller = Depends(caller)) -> Response:
    async with c.svc.db.transaction() as session:
        ns = await logic.get_namespace(session, c.svc, c.ctx, namespace)
        logic.writable(c.svc, c.ctx, ns, ADMIN_RULE)
        await session.delete(await logic.get_tag(session, ns, name))
    return no_content()

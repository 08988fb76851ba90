"""The metadata definitions catalog: namespaces holding properties, objects and tags, associated
with resource types (OS::Glance::Image, OS::Nova::Flavor, ...). Operators write it; everyone
reads what is public or their own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import isotime, utcnow
from nimbus.image.models import (
    MetadefNamespace,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefResourceTypeAssociation,
    MetadefTag,
)
from nimbus.web.errors import BadRequest, Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

BASE = "/v2/metadefs/namespaces"
PROPERTY_KEYS = ("title", "description", "type", "enum", "default", "readonly", "minimum",
                 "maximum", "maxLength", "minLength", "pattern", "items", "operators",
                 "uniqueItems", "minItems", "maxItems", "additionalItems")
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def check_name(value: Any, field: str, limit: int = 80) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"Invalid value for '{field}': a string of 1 to {limit} characters.")
    return value


def stamps(row: Any) -> dict[str, Any]:
    return {"created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at)}


# -- namespaces --------------------------------------------------------------------------------
def namespace_target(ns: MetadefNamespace | None) -> dict[str, Any]:
    if ns is None:
        return {"project_id": None, "visibility": None, "member_id": None}
    return {"project_id": ns.owner, "owner": ns.owner, "visibility": ns.visibility,
            "member_id": None}


async def get_namespace(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                        name: str) -> MetadefNamespace:
    ns = (await session.scalars(select(MetadefNamespace).where(
        MetadefNamespace.namespace == name))).first()
    if ns is None or not (ctx.is_admin or ns.visibility == "public"
                          or (ctx.project_id and ns.owner == ctx.project_id)):
        raise NotFound(f"Metadata definition namespace={name} was not found.")
    svc.enforce("image:get_metadef_namespace", ctx, namespace_target(ns))
    return ns


def _check_namespace_fields(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": check_name(data.get("namespace"), "namespace")}
    if data.get("display_name") is not None:
        out["display_name"] = check_name(data["display_name"], "display_name")
    if data.get("description") is not None:
        if not isinstance(data["description"], str) or len(data["description"]) > 500:
            raise BadRequest("Invalid value for 'description': at most 500 characters.")
        out["description"] = data["description"]
    visibility = data.get("visibility", "private")
    if visibility not in ("public", "private"):
        raise BadRequest(f"Invalid value for 'visibility': {visibility!r}.")
    out["visibility"] = visibility
    protected = data.get("protected", False)
    if not isinstance(protected, bool):
        raise BadRequest("Invalid value for 'protected': must be a boolean.")
    out["protected"] = protected
    return out


async def render_namespace(session: AsyncSession, ns: MetadefNamespace, *,
                           full: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"namespace": ns.namespace, "visibility": ns.visibility,
                            "protected": ns.protected, "owner": ns.owner,
                            "self": f"{BASE}/{ns.namespace}",
                            "schema": "/v2/schemas/metadefs/namespace", **stamps(ns)}
    if ns.display_name is not None:
        body["display_name"] = ns.display_name
    if ns.description is not None:
        body["description"] = ns.description
    assocs = await associations(session, ns)
    if assocs:
        body["resource_type_associations"] = assocs
    if full:
        props = await list_properties(session, ns)
        if props:
            body["properties"] = props
        objects = await list_objects(session, ns)
        if objects:
            body["objects"] = objects
        tags = await list_tags(session, ns)
        if tags:
            body["tags"] = [{"name": t["name"]} for t in tags]
    return body


async def create_namespace(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                           data: dict[str, Any]) -> MetadefNamespace:
    svc.enforce("image:add_metadef_namespace", ctx, namespace_target(None))
    fields = _check_namespace_fields(data)
    if (await session.scalars(select(MetadefNamespace.id).where(
            MetadefNamespace.namespace == fields["namespace"]))).first() is not None:
        raise Conflict(f"Metadata definition namespace={fields['namespace']} already exists.")
    now = utcnow()
    ns = MetadefNamespace(owner=data.get("owner") or ctx.project_id, created_at=now,
                          updated_at=now, **fields)
    session.add(ns)
    await session.flush()
    for assoc in data.get("resource_type_associations") or []:
        await associate(session, ns, assoc)
    props = data.get("properties") or {}
    if not isinstance(props, dict):
        raise BadRequest("Invalid value for 'properties': an object of property definitions.")
    for name, definition in props.items():
        await create_property(session, ns, {**(definition or {}), "name": name})
    for obj in data.get("objects") or []:
        await create_object(session, ns, obj)
    for tag in data.get("tags") or []:
        await create_tag(session, ns, tag.get("name") if isinstance(tag, dict) else None)
    return ns


async def update_namespace(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                           ns: MetadefNamespace, data: dict[str, Any]) -> None:
    svc.enforce("image:modify_metadef_namespace", ctx, namespace_target(ns))
    fields = _check_namespace_fields({**data, "namespace": data.get("namespace", ns.namespace)})
    if fields["namespace"] != ns.namespace and (await session.scalars(select(
            MetadefNamespace.id).where(MetadefNamespace.namespace == fields["namespace"]))
            ).first() is not None:
        raise Conflict(f"Metadata definition namespace={fields['namespace']} already exists.")
    for key, value in fields.items():
        setattr(ns, key, value)
    ns.display_name = data.get("display_name", ns.display_name)
    ns.description = data.get("description", ns.description)
    ns.updated_at = utcnow()


def writable(svc: ImageService, ctx: RequestContext, ns: MetadefNamespace, rule: str) -> None:
    svc.enforce(rule, ctx, namespace_target(ns))
    if ns.protected:
        raise Forbidden(f"Metadata definition namespace {ns.namespace} is protected and "
                        "cannot be changed that way.")


async def list_namespaces(session: AsyncSession, ctx: RequestContext,
                          params: dict[str, str]) -> list[MetadefNamespace]:
    query = select(MetadefNamespace)
    if not ctx.is_admin:
        query = query.where((MetadefNamespace.visibility == "public")
                            | (MetadefNamespace.owner == ctx.project_id))
    if params.get("visibility"):
        query = query.where(MetadefNamespace.visibility == params["visibility"])
    if params.get("resource_types"):
        names = params["resource_types"].split(",")
        query = query.where(MetadefNamespace.id.in_(
            select(MetadefResourceTypeAssociation.namespace_id).join(
                MetadefResourceType, MetadefResourceType.id ==
                MetadefResourceTypeAssociation.resource_type_id)
            .where(MetadefResourceType.name.in_(names))))
    return list((await session.scalars(query.order_by(MetadefNamespace.namespace))).all())


# -- resource types ----------------------------------------------------------------------------
async def resource_types(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(MetadefResourceType).order_by(
        MetadefResourceType.name))).all()
    return [{"name": r.name, **stamps(r)} for r in rows]


async def associations(session: AsyncSession, ns: MetadefNamespace) -> list[dict[str, Any]]:
    rows = await session.execute(select(MetadefResourceTypeAssociation, MetadefResourceType.name)
                                 .join(MetadefResourceType, MetadefResourceType.id ==
                                       MetadefResourceTypeAssociation.resource_type_id)
                                 .where(MetadefResourceTypeAssociation.namespace_id == ns.id))
    out = []
    for assoc, name in rows:
        body: dict[str, Any] = {"name": name, **stamps(assoc)}
        if assoc.prefix is not None:
            body["prefix"] = assoc.prefix
        if assoc.properties_target is not None:
            body["properties_target"] = assoc.properties_target
        out.append(body)
    return out


async def associate(session: AsyncSession, ns: MetadefNamespace,
                    data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("A resource type association is an object with a 'name'.")
    name = check_name(data.get("name"), "name")
    rtype = (await session.scalars(select(MetadefResourceType).where(
        MetadefResourceType.name == name))).first()
    now = utcnow()
    if rtype is None:
        rtype = MetadefResourceType(name=name, protected=False, created_at=now, updated_at=now)
        session.add(rtype)
        await session.flush()
    if await session.get(MetadefResourceTypeAssociation, (ns.id, rtype.id)) is not None:
        raise Conflict(f"Resource type {name} is already associated with namespace "
                       f"{ns.namespace}.")
    assoc = MetadefResourceTypeAssociation(
        namespace_id=ns.id, resource_type_id=rtype.id, prefix=data.get("prefix"),
        properties_target=data.get("properties_target"), created_at=now, updated_at=now)
    session.add(assoc)
    await session.flush()
    return {"name": name, **{k: v for k, v in (("prefix", assoc.prefix), (
        "properties_target", assoc.properties_target)) if v is not None}, **stamps(assoc)}


async def dissociate(session: AsyncSession, ns: MetadefNamespace, name: str) -> None:
    rtype = (await session.scalars(select(MetadefResourceType).where(
        MetadefResourceType.name == name))).first()
    assoc = None if rtype is None else await session.get(
        MetadefResourceTypeAssociation, (ns.id, rtype.id))
    if assoc is None:
        raise NotFound(f"Resource type {name} is not associated with namespace "
                       f"{ns.namespace}.")
    await session.delete(assoc)


# -- properties --------------------------------------------------------------------------------
def _definition(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data.get("title"), str):
        raise BadRequest("Invalid value for 'title': a property needs a title.")
    if data.get("type") not in PROPERTY_TYPES:
        raise BadRequest(f"Invalid value for 'type': one of {', '.join(PROPERTY_TYPES)}.")
    return {k: data[k] for k in PROPERTY_KEYS if k in data}


async def list_properties(session: AsyncSession,
                          ns: MetadefNamespace) -> dict[str, dict[str, Any]]:
    rows = (await session.scalars(select(MetadefProperty).where(
        MetadefProperty.namespace_id == ns.id).order_by(MetadefProperty.name))).all()
    return {r.name: dict(r.definition) for r in rows}


async def get_property(session: AsyncSession, ns: MetadefNamespace,
                       name: str) -> MetadefProperty:
    row = (await session.scalars(select(MetadefProperty).where(
        MetadefProperty.namespace_id == ns.id, MetadefProperty.name == name))).first()
    if row is None:
        raise NotFound(f"Metadata definition property={name} not found in namespace="
                       f"{ns.namespace}.")
    return row


def render_property(row: MetadefProperty) -> dict[str, Any]:
    return {"name": row.name, **row.definition}


async def create_property(session: AsyncSession, ns: MetadefNamespace,
                          data: Any) -> MetadefProperty:
    if not isinstance(data, dict):
        raise BadRequest("A property definition is an object.")
    name = check_name(data.get("name"), "name")
    definition = _definition(data)
    if (await session.scalars(select(MetadefProperty.id).where(
            MetadefProperty.namespace_id == ns.id, MetadefProperty.name == name))).first():
        raise Conflict(f"A metadata definition property with name={name} already exists in "
                       f"namespace={ns.namespace}.")
    row = MetadefProperty(namespace_id=ns.id, name=name, definition=definition)
    session.add(row)
    await session.flush()
    return row


async def update_property(session: AsyncSession, ns: MetadefNamespace, row: MetadefProperty,
                          data: Any) -> None:
    if not isinstance(data, dict):
        raise BadRequest("A property definition is an object.")
    name = check_name(data.get("name", row.name), "name")
    if name != row.name:
        await session.flush()
        if (await session.scalars(select(MetadefProperty.id).where(
                MetadefProperty.namespace_id == ns.id, MetadefProperty.name == name))).first():
            raise Conflict(f"A metadata definition property with name={name} already exists.")
    row.name, row.definition = name, _definition(data)


# -- objects -----------------------------------------------------------------------------------
def render_object(ns: MetadefNamespace, row: MetadefObject) -> dict[str, Any]:
    body: dict[str, Any] = {"name": row.name, "required": list(row.required or []),
                            "properties": dict(row.properties or {}),
                            "self": f"{BASE}/{ns.namespace}/objects/{row.name}",
                            "schema": "/v2/schemas/metadefs/object", **stamps(row)}
    if row.description is not None:
        body["description"] = row.description
    return body


async def list_objects(session: AsyncSession, ns: MetadefNamespace) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(MetadefObject).where(
        MetadefObject.namespace_id == ns.id).order_by(MetadefObject.name))).all()
    return [render_object(ns, r) for r in rows]


async def get_object(session: AsyncSession, ns: MetadefNamespace, name: str) -> MetadefObject:
    row = (await session.scalars(select(MetadefObject).where(
        MetadefObject.namespace_id == ns.id, MetadefObject.name == name))).first()
    if row is None:
        raise NotFound(f"Metadata definition object={name} not found in namespace="
                       f"{ns.namespace}.")
    return row


def _object_fields(data: Any, current: MetadefObject | None = None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("A metadata definition object is a JSON object.")
    required = data.get("required", [] if current is None else current.required)
    props = data.get("properties", {} if current is None else current.properties)
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise BadRequest("Invalid value for 'required': a list of property names.")
    if not isinstance(props, dict):
        raise BadRequest("Invalid value for 'properties': an object of property definitions.")
    return {"name": check_name(data.get("name"), "name"), "required": required,
            "properties": {k: _definition(v if isinstance(v, dict) else {})
                           for k, v in props.items()},
            "description": data.get("description")}


async def create_object(session: AsyncSession, ns: MetadefNamespace,
                        data: Any) -> MetadefObject:
    fields = _object_fields(data)
    if (await session.scalars(select(MetadefObject.id).where(
            MetadefObject.namespace_id == ns.id,
            MetadefObject.name == fields["name"]))).first():
        raise Conflict(f"A metadata definition object with name={fields['name']} already "
                       f"exists in namespace={ns.namespace}.")
    now = utcnow()
    row = MetadefObject(namespace_id=ns.id, created_at=now, updated_at=now, **fields)
    session.add(row)
    await session.flush()
    return row


async def update_object(session: AsyncSession, ns: MetadefNamespace, row: MetadefObject,
                        data: Any) -> None:
    fields = _object_fields(data, row)
    if fields["name"] != row.name and (await session.scalars(select(MetadefObject.id).where(
            MetadefObject.namespace_id == ns.id,
            MetadefObject.name == fields["name"]))).first():
        raise Conflict(f"A metadata definition object with name={fields['name']} already "
                       "exists.")
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = utcnow()


# -- tags --------------------------------------------------------------------------------------
async def list_tags(session: AsyncSession, ns: MetadefNamespace) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(MetadefTag).where(
        MetadefTag.namespace_id == ns.id).order_by(MetadefTag.id))).all()
    return [{"name": r.name, **stamps(r)} for r in rows]


async def get_tag(session: AsyncSession, ns: MetadefNamespace, name: str) -> MetadefTag:
    row = (await session.scalars(select(MetadefTag).where(
        MetadefTag.namespace_id == ns.id, MetadefTag.name == name))).first()
    if row is None:
        raise NotFound(f"Metadata tag {name} not found in namespace {ns.namespace}.")
    return row


async def create_tag(session: AsyncSession, ns: MetadefNamespace, name: Any) -> MetadefTag:
    name = check_name(name, "name", 255)
    if (await session.scalars(select(MetadefTag.id).where(
            MetadefTag.namespace_id == ns.id, MetadefTag.name == name))).first():
        raise Conflict(f"A metadata tag with name={name} already exists in namespace="
                       f"{ns.namespace}.")
    now = utcnow()
    row = MetadefTag(namespace_id=ns.id, name=name, created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    return row


async def replace_tags(session: AsyncSession, ns: MetadefNamespace, tags: Any, *,
                       append: bool) -> list[dict[str, Any]]:
    if not isinstance(tags, list):
        raise BadRequest("Invalid value for 'tags': a list of {\"name\": ...} objects.")
    names = [t.get("name") if isinstance(t, dict) else None for t in tags]
    if len(set(map(str, names))) != len(names):
        raise Conflict("Duplicate tag names in the request.")
    if not append:
        await session.execute(delete(MetadefTag).where(MetadefTag.namespace_id == ns.id))
    for name in names:
        await create_tag(session, ns, name)
    return await list_tags(session, ns)


async def clear(session: AsyncSession, ns: MetadefNamespace, what: str) -> None:
    table: Any = {"objects": MetadefObject, "properties": MetadefProperty,
                  "tags": MetadefTag}[what]
    await session.execute(delete(table).where(table.namespace_id == ns.id))

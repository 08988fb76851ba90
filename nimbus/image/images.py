"""Images: what they are, who sees them, creating and deleting them. No HTTP here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.common.timeutils import isotime, utcnow
from nimbus.image import quotas
from nimbus.image.errors import image_not_found, read_only, reserved
from nimbus.image.models import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from nimbus.web.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]
VISIBILITIES = ["community", "public", "private", "shared"]
# Never settable by anyone.
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
READ_ONLY = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size",
             "direct_url", "self", "file", "schema", "id", "os_hash_algo", "os_hash_value")
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"
# Base attributes a user may write.
WRITABLE = ("name", "visibility", "protected", "os_hidden", "min_ram", "min_disk",
            "container_format", "disk_format", "owner", "tags")
BASE = (*WRITABLE, "id", "status", "checksum", "size", "virtual_size", "created_at",
        "updated_at", "os_hash_algo", "os_hash_value", "locations")
MAX_PROPERTY_VALUE = 65535
MAX_INT = 2**31 - 1
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")


# -- validation --------------------------------------------------------------------------------
def _bad(field: str, why: str) -> BadRequest:
    return BadRequest(f"Invalid value for '{field}': {why}")


def validate_base(key: str, value: Any, svc: ImageService) -> Any:
    """A writable base attribute's value, checked as Glance's image schema does."""
    if key in ("name", "owner"):
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise _bad(key, "must be null or a string of at most 255 characters.")
        return value
    if key == "visibility":
        if value not in VISIBILITIES:
            raise _bad(key, f"{value!r} is not one of {', '.join(VISIBILITIES)}.")
        return value
    if key in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise _bad(key, f"{value!r} is not of type 'boolean'.")
        return value
    if key in ("min_ram", "min_disk"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(key, f"{value!r} is not of type 'integer'.")
        if not 0 <= value <= MAX_INT:
            raise _bad(key, "must be between 0 and 2147483647.")
        return value
    if key in ("container_format", "disk_format"):
        allowed = CONTAINER_FORMATS if key == "container_format" else DISK_FORMATS
        if value is not None and value not in allowed:
            raise _bad(key, f"{value!r} is not one of {', '.join(allowed)}.")
        return value
    if key == "tags":
        return validate_tags(value, svc)
    raise read_only(key)


def validate_tags(tags: Any, svc: ImageService) -> list[str]:
    if not isinstance(tags, list):
        raise _bad("tags", "must be a list of strings.")
    clean: list[str] = []
    for tag in tags:
        validate_tag(tag)
        if tag not in clean:
            clean.append(tag)
    if len(clean) > svc.settings.tag_quota:
        raise PayloadTooLarge(f"Maximum number of tags exceeded: attempted {len(clean)}, "
                              f"maximum {svc.settings.tag_quota}.")
    return clean


def validate_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > 255:
        raise _bad("tags", f"{tag!r} is not a string of 1 to 255 characters.")
    return tag


def check_property_name(key: str) -> None:
    if key in DISALLOWED or key in READ_ONLY:
        raise read_only(key)
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise reserved(key)
    if not key or len(key) > 255:
        raise BadRequest("Custom property should not be greater than 255 characters.")


def validate_property(key: str, value: Any) -> str:
    check_property_name(key)
    if not isinstance(value, str):
        raise _bad(key, f"{value!r} is not of type 'string' (additional properties are "
                        "strings).")
    if len(value) > MAX_PROPERTY_VALUE:
        raise _bad(key, f"longer than {MAX_PROPERTY_VALUE} characters.")
    return value


def check_property_count(count: int, svc: ImageService) -> None:
    if count > svc.settings.property_quota:
        raise PayloadTooLarge(f"Maximum number of image properties exceeded: attempted "
                              f"{count}, maximum {svc.settings.property_quota}.")


def check_visibility_change(svc: ImageService, ctx: RequestContext, visibility: str,
                            target: dict[str, Any]) -> None:
    if visibility == "public":
        svc.enforce("image:publicize_image", ctx, target)
    elif visibility == "community":
        svc.enforce("image:communitize_image", ctx, target)


# -- reading -----------------------------------------------------------------------------------
async def extras(session: AsyncSession, ids: Sequence[str]) -> tuple[
        dict[str, dict[str, str]], dict[str, list[str]], dict[str, list[str]]]:
    """Properties, tags and stores of several images, in one query."""
    props: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, list[str]] = {i: [] for i in ids}
    stores: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return props, tags, stores
    ids = list(ids)
    query = union_all(
        select(ImageProperty.image_id, literal("p"), ImageProperty.name, ImageProperty.value)
        .where(ImageProperty.image_id.in_(ids)),
        select(ImageTag.image_id, literal("t"), ImageTag.value, literal(""))
        .where(ImageTag.image_id.in_(ids)),
        select(ImageLocation.image_id, literal("s"), ImageLocation.store, literal(""))
        .where(ImageLocation.image_id.in_(ids)))
    for image_id, kind, name, value in await session.execute(query):
        if kind == "p":
            props[image_id][name] = value
        elif kind == "t":
            tags[image_id].append(name)
        else:
            stores[image_id].append(name)
    for values in (*tags.values(), *stores.values()):
        values.sort()
    return props, tags, stores


def render(img: Image, props: dict[str, str], tags: list[str],
           stores: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = dict(props)
    body.update({
        "id": img.id, "name": img.name, "status": img.status, "visibility": img.visibility,
        "protected": img.protected, "os_hidden": img.os_hidden, "owner": img.owner,
        "disk_format": img.disk_format, "container_format": img.container_format,
        "size": img.size, "virtual_size": img.virtual_size, "checksum": img.checksum,
        "os_hash_algo": img.os_hash_algo, "os_hash_value": img.os_hash_value,
        "min_ram": img.min_ram, "min_disk": img.min_disk, "tags": tags,
        "created_at": isotime(img.created_at), "updated_at": isotime(img.updated_at),
        "self": f"/v2/images/{img.id}", "file": f"/v2/images/{img.id}/file",
        "schema": "/v2/schemas/image",
    })
    if stores:
        body["stores"] = ",".join(stores)
    return body


async def render_many(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                      rows: Sequence[Image]) -> list[dict[str, Any]]:
    """The API view of images: stores by weight (highest first), and locations when the
    cloud shows them and the caller may see them."""
    from nimbus.image import locations

    ids = [r.id for r in rows]
    props, tags, stores = await extras(session, ids)
    weights = {s.id: s.weight for s in svc.stores.values()}
    shown = (await locations.shown(session, ids)
             if svc.settings.show_multiple_locations else None)
    out = []
    for r in rows:
        ordered = sorted(stores[r.id], key=lambda s: (-weights.get(s, 0), s))
        body = render(r, props[r.id], tags[r.id], ordered)
        if shown is not None and svc.allowed("image:get_image_location", ctx,
                                             target(r, ctx, None)):
            body["locations"] = shown[r.id]
        out.append(body)
    return out


async def render_one(session: AsyncSession, img: Image, svc: ImageService | None = None,
                     ctx: RequestContext | None = None) -> dict[str, Any]:
    if svc is not None and ctx is not None:
        return (await render_many(session, svc, ctx, [img]))[0]
    props, tags, stores = await extras(session, [img.id])
    return render(img, props[img.id], tags[img.id], stores[img.id])


async def get(session: AsyncSession, image_id: str, *, for_update: bool = False) -> Image:
    if not UUID_RE.match(image_id):
        raise image_not_found(image_id)
    query = select(Image).where(Image.id == image_id)
    if for_update:
        query = query.with_for_update()
    img = (await session.scalars(query)).first()
    if img is None:
        raise image_not_found(image_id)
    return img


async def member_of(session: AsyncSession, image_id: str,
                    project_id: str | None) -> ImageMember | None:
    if not project_id:
        return None
    return await session.get(ImageMember, (image_id, project_id))


def can_see(ctx: RequestContext, img: Image, member: ImageMember | None) -> bool:
    if ctx.is_admin or img.visibility in ("public", "community"):
        return True
    if ctx.project_id is not None and img.owner == ctx.project_id:
        return True
    return img.visibility == "shared" and member is not None


def target(img: Image, ctx: RequestContext, member: ImageMember | None) -> dict[str, Any]:
    return {"project_id": img.owner, "owner": img.owner, "visibility": img.visibility,
            "member_id": member.member if member is not None else None,
            "image_id": img.id}


async def get_visible(session: AsyncSession, ctx: RequestContext, image_id: str, *,
                      for_update: bool = False) -> tuple[Image, dict[str, Any]]:
    """The image and its policy target, or 404 when the caller may not see it."""
    img = await get(session, image_id, for_update=for_update)
    member = await member_of(session, img.id, ctx.project_id)
    if not can_see(ctx, img, member):
        raise image_not_found(image_id)
    return img, target(img, ctx, member)


# -- writing -----------------------------------------------------------------------------------
async def create(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                 body: dict[str, Any]) -> Image:
    for key in body:
        if key in DISALLOWED or (key in READ_ONLY and key != "id"):
            raise read_only(key)
    base = {k: validate_base(k, body[k], svc) for k in WRITABLE if k in body}
    props = {k: validate_property(k, v) for k, v in body.items()
             if k not in WRITABLE and k != "id"}
    check_property_count(len(props), svc)
    owner = base.pop("owner") if "owner" in base else ctx.project_id
    tgt = {"project_id": ctx.project_id, "owner": owner, "visibility":
           base.get("visibility", "shared"), "member_id": None}
    svc.enforce("image:add_image", ctx, tgt)
    if owner != ctx.project_id and not ctx.is_admin:
        raise Forbidden(f"You are not permitted to create images owned by '{owner}'.")
    check_visibility_change(svc, ctx, tgt["visibility"], tgt)
    image_id = body.get("id")
    if image_id is not None:
        if not isinstance(image_id, str) or not UUID_RE.match(image_id):
            raise _bad("id", f"{image_id!r} is not a UUID.")
        if await session.get(Image, image_id) is not None:
            raise Conflict(f"Image with identifier {image_id} already exists!")
    if owner:
        await quotas.check_count(session, svc, owner)
    now = utcnow()
    tags = base.pop("tags", [])
    img = Image(id=image_id or new_uuid(), status="queued",
                visibility=base.pop("visibility", "shared"), owner=owner,
                protected=base.pop("protected", False), os_hidden=base.pop("os_hidden", False),
                min_ram=base.pop("min_ram", 0), min_disk=base.pop("min_disk", 0),
                created_at=now, updated_at=now, **base)
    session.add(img)
    await session.flush()
    session.add_all([ImageProperty(image_id=img.id, name=k, value=v) for k, v in props.items()])
    session.add_all([ImageTag(image_id=img.id, value=t) for t in tags])
    await session.flush()
    return img


async def set_status(session: AsyncSession, image_id: str, new: str, *,
                     expect: Sequence[str] | None = None, **values: Any) -> bool:
    """Compare-and-set on the status: False when the image is gone or not in `expect`."""
    query = update(Image).where(Image.id == image_id)
    if expect is not None:
        query = query.where(Image.status.in_(list(expect)))
    result = await session.execute(
        query.values(status=new, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


async def touch(session: AsyncSession, image_id: str) -> None:
    await session.execute(update(Image).where(Image.id == image_id)
                          .values(updated_at=utcnow())
                          .execution_options(synchronize_session=False))


async def locations(session: AsyncSession, image_id: str) -> list[ImageLocation]:
    return list((await session.scalars(select(ImageLocation).where(
        ImageLocation.image_id == image_id).order_by(ImageLocation.id))).all())


async def delete_image(session: AsyncSession, img: Image) -> list[ImageLocation]:
    """Remove the record; returns the locations whose data the caller deletes after commit."""
    if img.protected:
        raise Forbidden(f"Image {img.id} is protected and cannot be deleted.")
    locs = await locations(session, img.id)
    await session.execute(delete(Image).where(Image.id == img.id))
    return locs


async def count_properties(session: AsyncSession, image_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(ImageProperty).where(
        ImageProperty.image_id == image_id)) or 0)

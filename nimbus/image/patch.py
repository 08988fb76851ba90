"""PATCH /v2/images/{id}: Glance's JSON-patch media types.

application/openstack-images-v2.1-json-patch is RFC 6902 ({"op", "path", "value"});
application/openstack-images-v2.0-json-patch is the older draft ({"replace": "/name",
"value"}). Paths are one level deep (an attribute or property), except inside /tags, where
index paths (/tags/0, /tags/-) and move/copy/test work as RFC 6902 says, because openstacksdk
computes its patches with jsonpatch and sends exactly those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import utcnow
from nimbus.image import images, locations
from nimbus.image.errors import read_only, reserved
from nimbus.image.models import Image, ImageLocation, ImageProperty, ImageTag
from nimbus.web.errors import BadRequest, Conflict, Forbidden, UnsupportedMediaType

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

MEDIA_TYPES = {"application/openstack-images-v2.1-json-patch": 10,
               "application/openstack-images-v2.0-json-patch": 4}
OPS = ("add", "remove", "replace")
TAG_OPS = (*OPS, "move", "copy", "test")


@dataclass
class Change:
    op: str
    path: list[str]
    value: Any = None
    source: list[str] | None = None  # move/copy "from"


def media_version(content_type: str | None) -> int:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in MEDIA_TYPES:
        allowed = ", ".join(sorted(MEDIA_TYPES))
        raise UnsupportedMediaType(f"Image PATCH expects Content-Type one of: {allowed}",
                                   headers={"Accept-Patch": allowed})
    return MEDIA_TYPES[kind]


def decode_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise BadRequest(f"Pointer `{pointer}` does not start with \"/\".")
    if re.search(r"/\s*?/", pointer[1:]):
        raise BadRequest(f"Pointer `{pointer}` contains adjacent \"/\".")
    if len(pointer) > 1 and pointer.endswith("/"):
        raise BadRequest(f"Pointer `{pointer}` end with \"/\".")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise BadRequest(f"Pointer `{pointer}` contains \"~\" not part of a recognized "
                         "escape sequence.")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    if not parts[0]:
        raise BadRequest(f"Pointer `{pointer}` does not contains valid token.")
    return parts


def parse(body: Any, version: int) -> list[Change]:
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if version == 10:
            op = raw.get("op")
            if op not in TAG_OPS:
                raise BadRequest(f"Invalid operation: `{op}`. It must be one of the "
                                 f"following: {', '.join(OPS)}.")
            if "path" not in raw:
                raise BadRequest("Unable to find 'path' in JSON Schema change")
            path = decode_pointer(raw["path"])
        else:
            present = [k for k in OPS if k in raw]
            if len(present) != 1:
                raise BadRequest('Operation objects must contain exactly one member named '
                                 '"add", "remove", or "replace".')
            op = present[0]
            path = decode_pointer(raw[op])
        change = Change(op, path)
        if op in ("move", "copy"):
            change.source = decode_pointer(raw.get("from"))
        elif op != "remove":
            if "value" not in raw:
                raise BadRequest(f'Operation "{op}" requires a member named "value".')
            change.value = raw["value"]
        _check_path(change)
        changes.append(change)
    return changes


def _check_path(change: Change) -> None:
    root = change.path[0]
    if root in images.READ_ONLY:
        raise read_only(root)
    if root in images.RESERVED or root.startswith(images.RESERVED_PREFIX):
        raise reserved(root)
    depth = len(change.path)
    if root == "tags":
        if depth > 2 or (change.source is not None and change.source[0] != "tags"):
            raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(change.path)}'")
        return
    if root == "locations" and change.op in OPS and depth <= 2:
        return
    if change.op not in OPS or depth != 1:
        raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(change.path)}'")


async def apply(session: AsyncSession, svc: ImageService, ctx: RequestContext, img: Image,
                tgt: dict[str, Any], changes: list[Change],
                version: int) -> list[ImageLocation]:
    """Apply the changes; returns removed locations, whose data the caller deletes after the
    commit."""
    props = {name: value for name, value in await session.execute(
        select(ImageProperty.name, ImageProperty.value).where(ImageProperty.image_id == img.id))}
    tags = list((await session.scalars(select(ImageTag.value).where(
        ImageTag.image_id == img.id).order_by(ImageTag.value))).all())
    old_props, old_tags = dict(props), list(tags)
    base: dict[str, Any] = {}
    removed: list[ImageLocation] = []
    for change in changes:
        root = change.path[0]
        if root == "tags":
            tags = _apply_tags(tags, change, svc)
        elif root == "locations":
            removed += await locations.patch(session, svc, ctx, img, tgt, change.op,
                                             change.path, change.value)
        elif root in images.WRITABLE:
            if change.op == "remove":
                raise Forbidden(f"Property {root} may not be removed.")
            if change.op == "add" and version == 4:
                raise Conflict(f"Property {root} already present.")
            base[root] = images.validate_base(root, change.value, svc)
        else:
            _apply_property(props, change, version)
    _check_base(svc, ctx, img, tgt, base)
    images.check_property_count(len(props), svc)
    if len(tags) > svc.settings.tag_quota:
        images.validate_tags(tags, svc)
    for key, value in base.items():
        setattr(img, key, value)
    if props != old_props:
        await session.execute(delete(ImageProperty).where(ImageProperty.image_id == img.id))
        session.add_all([ImageProperty(image_id=img.id, name=k, value=v)
                         for k, v in props.items()])
    if sorted(set(tags)) != old_tags:
        await session.execute(delete(ImageTag).where(ImageTag.image_id == img.id))
        session.add_all([ImageTag(image_id=img.id, value=t) for t in sorted(set(tags))])
    img.updated_at = utcnow()
    await session.flush()
    return removed


def _check_base(svc: ImageService, ctx: RequestContext, img: Image, tgt: dict[str, Any],
                base: dict[str, Any]) -> None:
    if "owner" in base and base["owner"] != img.owner and not ctx.is_admin:
        raise Forbidden("Owner can't be updated by non admin.")
    for key in ("container_format", "disk_format"):
        if key in base and base[key] != getattr(img, key) and img.status != "queued":
            raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    if "visibility" in base and base["visibility"] != img.visibility:
        images.check_visibility_change(svc, ctx, base["visibility"], tgt)


def _apply_property(props: dict[str, str], change: Change, version: int) -> None:
    key = change.path[0]
    if change.op == "remove":
        images.check_property_name(key)
        if key not in props:
            raise Conflict(f"Property {key} does not exist.")
        del props[key]
        return
    value = images.validate_property(key, change.value)
    if change.op == "replace" and key not in props:
        raise Conflict(f"Property {key} does not exist.")
    if change.op == "add" and version == 4 and key in props:
        raise Conflict(f"Property {key} already present.")
    props[key] = value


def _index(tags: list[str], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(tags)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise BadRequest(f"Invalid tag index {token!r}.")
    index = int(token)
    if index > len(tags) or (index == len(tags) and not allow_end):
        raise Conflict(f"Tag index {index} is out of range.")
    return index


def _apply_tags(tags: list[str], change: Change, svc: ImageService) -> list[str]:
    tags = list(tags)
    if len(change.path) == 1:
        if change.op == "remove":
            raise Forbidden("Property tags may not be removed.")
        if change.op in ("move", "copy"):
            raise BadRequest("Invalid JSON pointer for this resource: '/tags'")
        if change.op == "test":
            if change.value != tags:
                raise Conflict("The tags are not the tested value.")
            return tags
        return images.validate_tags(change.value, svc)
    token = change.path[1]
    if change.op == "add":
        tags.insert(_index(tags, token, allow_end=True), images.validate_tag(change.value))
    elif change.op == "remove":
        tags.pop(_index(tags, token, allow_end=False))
    elif change.op == "replace":
        tags[_index(tags, token, allow_end=False)] = images.validate_tag(change.value)
    elif change.op == "test":
        if tags[_index(tags, token, allow_end=False)] != change.value:
            raise Conflict("The tag is not the tested value.")
    else:
        assert change.source is not None
        if len(change.source) != 2:
            raise BadRequest("Invalid JSON pointer for this resource: '/tags'")
        value = tags[_index(tags, change.source[1], allow_end=False)]
        if change.op == "move":
            tags.pop(_index(tags, change.source[1], allow_end=False))
        tags.insert(_index(tags, token, allow_end=True), value)
    return tags

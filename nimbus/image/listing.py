"""GET /v2/images: Glance's filters, sorting and marker pagination, as one SQL query."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, false, func, literal_column, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import parse_isotime
from nimbus.image import images
from nimbus.image.models import Image, ImageMember, ImageProperty, ImageTag
from nimbus.web.errors import BadRequest

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at",
             "updated_at")
IN_FILTERS = ("name", "status", "container_format", "disk_format", "id")
INT_COLUMNS = ("size", "virtual_size", "min_ram", "min_disk")
STR_COLUMNS = ("owner", "checksum", "os_hash_algo", "os_hash_value")
BOOL_FILTERS = ("protected", "os_hidden")
TIME_OPS = {"gt": "__gt__", "gte": "__ge__", "eq": "__eq__", "neq": "__ne__",
            "lt": "__lt__", "lte": "__le__"}
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")


@dataclass
class Query:
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    member_status: str = "accepted"
    visibility: str | None = None
    hidden: bool | None = None
    tags: list[str] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)
    conditions: list[ColumnElement[bool]] = field(default_factory=list)


def _bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid value for {name}: {value!r} is not a boolean.")


def _int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: {value!r} is not an integer.") from None
    if not -(2**63) < number < 2**63:
        raise BadRequest(f"Invalid value for {name}: {value!r} is out of range.")
    return number


def _sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                         f"{', '.join(SORT_KEYS)}.")
    return key


def _sort_dir(value: str) -> str:
    if value not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {value}")
    return value


def _in_values(value: str) -> list[str]:
    if not value.startswith("in:"):
        return [value]
    try:
        return [v.strip() for v in next(csv.reader([value[3:]], skipinitialspace=True))]
    except (csv.Error, StopIteration):
        raise BadRequest(f"Invalid 'in' filter: {value!r}") from None


def _time_filter(column: Any, name: str, value: str) -> ColumnElement[bool]:
    op, sep, text = value.partition(":")
    if not sep or op not in TIME_OPS:
        op, text = "eq", value
    try:
        when: datetime = parse_isotime(text)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: {value!r} (expected [op:]ISO 8601 time, "
                         f"op one of {', '.join(TIME_OPS)}).") from None
    result: ColumnElement[bool] = getattr(column, TIME_OPS[op])(when)
    return result


def parse(params: Sequence[tuple[str, str]]) -> Query:
    q = Query()
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    new_sort: str | None = None
    seen: set[str] = set()
    for name, value in params:
        if name == "limit":
            q.limit = _int("limit", value)
            if q.limit < 0:
                raise BadRequest("limit param must be positive")
            q.limit = min(q.limit, MAX_LIMIT)
        elif name == "marker":
            q.marker = value
        elif name == "member_status":
            if value not in MEMBER_STATUSES:
                raise BadRequest(f"Invalid status: {value}")
            q.member_status = value
        elif name == "tag":
            q.tags.append(value.strip())
        elif name == "sort_key":
            sort_keys.append(_sort_key(value.strip()))
        elif name == "sort_dir":
            sort_dirs.append(_sort_dir(value.strip()))
        elif name == "sort":
            new_sort = value
        elif name == "visibility":
            if value not in (*images.VISIBILITIES, "all"):
                raise BadRequest(f"Invalid visibility value: {value}")
            q.visibility = value
        elif name == "os_hidden":
            q.hidden = _bool(name, value)
        elif name in ("changes-since", "changes_since"):
            raise BadRequest('The "changes-since" filter is no longer available on v2.')
        elif name in seen and name not in ("tag",):
            continue  # Glance reads one value per filter
        else:
            q.conditions.append(_filter(name, value))
        seen.add(name)
    if new_sort is not None:
        if sort_keys or sort_dirs:
            raise BadRequest("Old and new sorting syntax cannot be combined")
        for item in new_sort.strip().split(","):
            key, _, direction = item.partition(":")
            q.sort.append((_sort_key(key.strip()), _sort_dir(direction.strip() or "desc")))
    else:
        if len(sort_dirs) > 1 and len(sort_dirs) != len(sort_keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        keys = sort_keys or ["created_at"]
        dirs = sort_dirs or ["desc"]
        q.sort = [(k, dirs[i] if len(dirs) > 1 else dirs[0]) for i, k in enumerate(keys)]
    return q


def _filter(name: str, value: str) -> ColumnElement[bool]:
    if name in IN_FILTERS:
        column = getattr(Image, name)
        values = _in_values(value)
        return column.in_(values) if len(values) > 1 else column == values[0]
    if name in BOOL_FILTERS:
        return getattr(Image, name).is_(_bool(name, value))
    if name in INT_COLUMNS:
        return getattr(Image, name) == _int(name, value)
    if name == "size_min":
        return Image.size >= _int(name, value)
    if name == "size_max":
        return Image.size <= _int(name, value)
    if name in ("created_at", "updated_at"):
        return _time_filter(getattr(Image, name), name, value)
    if name in STR_COLUMNS:
        return getattr(Image, name) == value
    if not name or len(name) > 255:
        raise BadRequest(f"Invalid filter {name!r}.")
    return exists().where(ImageProperty.image_id == Image.id, ImageProperty.name == name,
                          ImageProperty.value == value)


def _sort_column(key: str) -> Any:
    column = getattr(Image, key)
    if key == "size":
        return func.coalesce(column, -1)
    if key in ("name", "container_format", "disk_format"):
        return func.coalesce(column, "")
    return column


def _sort_value(img: Image, key: str) -> Any:
    value = getattr(img, key)
    if value is None:
        return -1 if key == "size" else ""
    return value


def _unindexed(name: str, sqlite: bool) -> Any:
    """A column SQLite will not use an index for: the visibility terms are ORed, and SQLite
    would gather every match through several indexes and sort them all, where walking the
    (created_at, id) index and stopping after one page is what a listing wants."""
    return literal_column(f"+image.{name}") if sqlite else getattr(Image, name)


def _visibility(ctx: RequestContext, q: Query, sqlite: bool = False) -> ColumnElement[bool]:
    visibility, owner = _unindexed("visibility", sqlite), _unindexed("owner", sqlite)
    member = exists().where(ImageMember.image_id == Image.id,
                            ImageMember.member == ctx.project_id)
    if q.member_status != "all":
        member = exists().where(ImageMember.image_id == Image.id,
                                ImageMember.member == ctx.project_id,
                                ImageMember.status == q.member_status)
    if ctx.is_admin:
        return visibility == q.visibility if q.visibility not in (None, "all") else true()
    if not ctx.project_id:
        return visibility == "public" if q.visibility in (None, "all", "public") else false()
    mine = owner == ctx.project_id
    shared_with_me = and_(visibility == "shared", member)
    if q.visibility is None:
        return or_(visibility == "public", mine, shared_with_me)
    if q.visibility == "all":
        return or_(visibility.in_(("public", "community")), mine, shared_with_me)
    if q.visibility in ("public", "community"):
        return visibility == q.visibility
    if q.visibility == "private":
        return and_(visibility == "private", mine)
    return or_(and_(visibility == "shared", mine), shared_with_me)


async def list_images(session: AsyncSession, svc: ImageService, ctx: RequestContext,
                      q: Query) -> tuple[list[Image], str | None]:
    sqlite = session.get_bind().dialect.name == "sqlite"
    where: list[ColumnElement[bool]] = [_visibility(ctx, q, sqlite), *q.conditions]
    if q.hidden is not None:
        where.append(Image.os_hidden.is_(q.hidden))
    else:
        where.append(Image.os_hidden.is_(False))
    for tag in q.tags:
        where.append(exists().where(ImageTag.image_id == Image.id, ImageTag.value == tag))
    sort = list(q.sort)
    for extra in ("created_at", "id"):
        if extra not in (k for k, _ in sort):
            sort.append((extra, sort[-1][1] if sort else "desc"))
    if q.marker is not None:
        marker = await _marker(session, ctx, q.marker)
        where.append(_after(marker, sort))
    order = [_sort_column(k).desc() if d == "desc" else _sort_column(k).asc() for k, d in sort]
    rows = list((await session.scalars(
        select(Image).where(*where).order_by(*order).limit(q.limit + 1))).all())
    next_marker = None
    if len(rows) > q.limit:
        rows = rows[:q.limit]
        next_marker = rows[-1].id if rows else None
    return rows, next_marker


async def _marker(session: AsyncSession, ctx: RequestContext, marker: str) -> Image:
    img = await session.get(Image, marker) if images.UUID_RE.match(marker) else None
    if img is not None:
        member = await images.member_of(session, img.id, ctx.project_id)
        if images.can_see(ctx, img, member):
            return img
    raise BadRequest(f"Invalid marker. Image {marker} could not be found.")


def _after(marker: Image, sort: list[tuple[str, str]]) -> ColumnElement[bool]:
    """Rows strictly after the marker in the sort order (keyset pagination)."""
    clauses = []
    for i, (key, direction) in enumerate(sort):
        equal = [_sort_column(k) == _sort_value(marker, k) for k, _ in sort[:i]]
        column, value = _sort_column(key), _sort_value(marker, key)
        beyond = column < value if direction == "desc" else column > value
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)

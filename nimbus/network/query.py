"""What every Neutron collection GET accepts: filters on any attribute (several values of one
filter are alternatives), fields=, sort_key/sort_dir, limit/marker/page_reverse and tag filters.

The resource says which API attribute is which column; this module turns the query string
into SQL, so the database does the filtering, sorting and paging.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Boolean, Integer, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from nimbus.network.errors import bad_request
from nimbus.network.models import Tag

RESERVED = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "tags",
            "tags-any", "not-tags", "not-tags-any", "tenant_id", "project_id"}
TRUE = {"true", "1", "yes", "on", "t", "y"}
FALSE = {"false", "0", "no", "off", "f", "n"}


@dataclass
class ListParams:
    filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sort: list[tuple[str, str]] = field(default_factory=list)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    tags: dict[str, list[str]] = field(default_factory=dict)

    def first(self, name: str) -> str | None:
        values = self.filters.get(name)
        return values[0] if values else None


def parse(items: Iterable[tuple[str, str]]) -> ListParams:
    params = ListParams()
    keys: list[str] = []
    dirs: list[str] = []
    for key, value in items:
        if key == "fields":
            params.fields.extend(v for v in value.split(",") if v)
        elif key == "sort_key":
            keys.append(value)
        elif key == "sort_dir":
            if value not in ("asc", "desc"):
                raise bad_request(f"Invalid input for sort_dir: {value!r}; it must be "
                                  "'asc' or 'desc'.")
            dirs.append(value)
        elif key == "limit":
            try:
                limit = int(value)
            except ValueError:
                raise bad_request(f"Bad limit request: '{value}' is not an integer.") from None
            if limit < 0:
                raise bad_request(f"Bad limit request: Limit must be an integer 0 or greater "
                                  f"and not '{value}'.")
            params.limit = limit or None
        elif key == "marker":
            params.marker = value
        elif key == "page_reverse":
            params.page_reverse = value.lower() in TRUE
        elif key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            params.tags.setdefault(key, []).extend(t for t in value.split(",") if t)
        else:
            if key == "tenant_id":
                key = "project_id"
            params.filters.setdefault(key, []).append(value)
    if dirs and len(dirs) != len(keys):
        raise bad_request("The number of sort_keys and sort_dirs must be same")
    params.sort = list(zip(keys, dirs or ["asc"] * len(keys), strict=True))
    return params


def as_bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise bad_request(f"Invalid input for operation: '{value}' cannot be converted to "
                      f"boolean (filter {name}).", "InvalidInput")


def convert(column: Any, value: str, name: str) -> Any:
    kind = column.type
    if isinstance(kind, Boolean):
        return as_bool(value, name)
    if isinstance(kind, Integer):
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"Invalid input for operation: '{value}' is not an integer "
                              f"(filter {name}).", "InvalidInput") from None
    return value


Columns = dict[str, InstrumentedAttribute[Any]]


def apply_filters(query: Any, columns: Columns, params: ListParams,
                  skip: Iterable[str] = ()) -> Any:
    skipped = set(skip)
    for name, values in params.filters.items():
        if name in skipped:
            continue
        column = columns.get(name)
        if column is None:
            continue  # unknown filters are ignored, as upstream does without filter-validation
        converted = [convert(column, v, name) for v in values]
        if any(v == "" for v in converted) and column.nullable:
            query = query.where(or_(column.in_(converted), column.is_(None)))
        else:
            query = query.where(column.in_(converted))
    return query


def apply_tags(query: Any, id_column: Any, params: ListParams) -> Any:
    tags = params.tags
    for tag in tags.get("tags", []):
        query = query.where(id_column.in_(select(Tag.resource_id).where(Tag.tag == tag)))
    if tags.get("tags-any"):
        query = query.where(id_column.in_(
            select(Tag.resource_id).where(Tag.tag.in_(tags["tags-any"]))))
    if tags.get("not-tags"):
        wanted = set(tags["not-tags"])
        having_all = (select(Tag.resource_id).where(Tag.tag.in_(wanted))
                      .group_by(Tag.resource_id).having(func.count() == len(wanted)))
        query = query.where(id_column.not_in(having_all))
    if tags.get("not-tags-any"):
        query = query.where(id_column.not_in(
            select(Tag.resource_id).where(Tag.tag.in_(tags["not-tags-any"]))))
    return query


async def paginate(session: Any, query: Any, model: Any, columns: Columns,
                   params: ListParams) -> tuple[list[Any], bool]:
    """Sort and page; returns the rows and whether more follow in the direction read."""
    keys: list[tuple[Any, bool]] = []
    for key, direction in params.sort:
        column = columns.get(key)
        if column is None:
            raise bad_request(f"Attribute '{key}' used in sort is not valid.")
        keys.append((column, direction == "asc"))
    if not any(c is model.id for c, _ in keys):
        keys.append((model.id, keys[-1][1] if keys else True))
    if params.page_reverse:
        keys = [(c, not asc) for c, asc in keys]
    if params.marker:
        marker = await session.get(model, params.marker)
        if marker is not None:
            query = query.where(_after(marker, keys))
    query = query.order_by(*[c.asc() if asc else c.desc() for c, asc in keys])
    if params.limit:
        query = query.limit(params.limit + 1)
    rows = list((await session.scalars(query)).unique().all())
    more = bool(params.limit and len(rows) > params.limit)
    if more:
        rows = rows[: params.limit]
    if params.page_reverse:
        rows.reverse()
    return rows, more


def _after(marker: Any, keys: list[tuple[Any, bool]]) -> Any:
    """Rows strictly after the marker in the (k1, k2, ...) ordering."""
    clauses = []
    for i, (column, asc) in enumerate(keys):
        value = getattr(marker, column.key)
        if value is None:
            continue
        equal = [c == getattr(marker, c.key) for c, _ in keys[:i]
                 if getattr(marker, c.key) is not None]
        step = column > value if asc else column < value
        clauses.append(and_(*equal, step))
    return or_(*clauses) if clauses else True


def select_fields(body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return body
    return {k: body[k] for k in fields if k in body}

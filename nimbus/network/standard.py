"""Standard attributes every resource shares: timestamps, revision_number with If-Match,
description and tags."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.timeutils import isotime, utcnow
from nimbus.network.errors import bad_request
from nimbus.network.models import Tag
from nimbus.web.errors import ApiError

_IF_MATCH = re.compile(r"^\s*revision_number\s*=\s*(\d+)\s*$")
MAX_TAG_LENGTH = 255


def standard(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "description": row.description or "",
        "created_at": isotime(row.created_at),
        "updated_at": isotime(row.updated_at),
        "revision_number": row.revision_number,
    }


def bump(row: Any) -> None:
    """A change: the revision goes up by one and updated_at moves."""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()


def check_if_match(row: Any, header: str | None) -> None:
    """If-Match: revision_number=N makes the update conditional (412 when stale)."""
    if not header:
        return
    for part in header.split(","):
        m = _IF_MATCH.match(part)
        if m is None:
            continue
        wanted = int(m.group(1))
        if wanted != row.revision_number:
            raise ApiError(f"Constrained to {wanted}, but current revision is "
                           f"{row.revision_number}", status=412,
                           error_type="RevisionNumberConstraintFailed")


async def tags_of(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return found
    for chunk_start in range(0, len(ids), 500):
        chunk = list(ids[chunk_start:chunk_start + 500])
        rows = (await session.execute(select(Tag.resource_id, Tag.tag).where(
            Tag.resource_id.in_(chunk)).order_by(Tag.tag))).all()
        for rid, tag in rows:
            found[rid].append(tag)
    return found


def validate_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise bad_request("Invalid input for tags: a list of strings is required.")
    clean: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH or "," in tag:
            raise bad_request(f"Invalid input for operation: '{tag}' is not a valid tag.",
                              "InvalidInput")
        if tag not in clean:
            clean.append(tag)
    return clean


async def set_tags(session: AsyncSession, resource_id: str, tags: Sequence[str]) -> None:
    await session.execute(delete(Tag).where(Tag.resource_id == resource_id))
    for tag in tags:
        session.add(Tag(resource_id=resource_id, tag=tag))


async def drop_tags(session: AsyncSession, resource_id: str) -> None:
    await session.execute(delete(Tag).where(Tag.resource_id == resource_id))

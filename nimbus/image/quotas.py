"""Per-project quotas, with Glance's unified-limit names: image_count_total,
image_count_uploading, image_size_total and image_stage_total (sizes in MiB). Limits come from
image.project_quotas[project], else image.quotas, else unlimited (-1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.image.models import Image
from nimbus.web.errors import PayloadTooLarge

if TYPE_CHECKING:
    from nimbus.image.service import ImageService

NAMES = ("image_count_total", "image_count_uploading", "image_size_total", "image_stage_total")
MiB = 1 << 20
IN_FLIGHT = ("saving", "uploading", "importing")
STAGED = ("uploading", "importing")


def limit(svc: ImageService, project: str, name: str) -> int:
    override = svc.settings.project_quotas.get(project, {})
    return int(override.get(name, svc.settings.quotas.get(name, -1)))


def over(name: str, lim: int, usage: int, delta: int, unit: str = "") -> PayloadTooLarge:
    return PayloadTooLarge(f"Resource {name} is over limit of {lim}{unit} due to current "
                           f"usage {usage}{unit} and delta {delta}{unit}.")


async def _count(session: AsyncSession, owner: str, statuses: tuple[str, ...] = ()) -> int:
    query = select(func.count()).select_from(Image).where(Image.owner == owner)
    if statuses:
        query = query.where(Image.status.in_(statuses))
    return int(await session.scalar(query) or 0)


async def _bytes(session: AsyncSession, owner: str, statuses: tuple[str, ...] = ()) -> int:
    query = select(func.coalesce(func.sum(Image.size), 0)).where(Image.owner == owner)
    if statuses:
        query = query.where(Image.status.in_(statuses))
    return int(await session.scalar(query) or 0)


async def check_count(session: AsyncSession, svc: ImageService, owner: str) -> None:
    lim = limit(svc, owner, "image_count_total")
    if lim >= 0:
        used = await _count(session, owner)
        if used + 1 > lim:
            raise over("image_count_total", lim, used, 1)


async def check_uploading(session: AsyncSession, svc: ImageService, owner: str | None) -> None:
    if not owner:
        return
    lim = limit(svc, owner, "image_count_uploading")
    if lim >= 0:
        used = await _count(session, owner, IN_FLIGHT)
        if used + 1 > lim:
            raise over("image_count_uploading", lim, used, 1)


async def room(session: AsyncSession, svc: ImageService, owner: str | None, *,
               staging: bool = False) -> int | None:
    """Bytes the owner may still store (None: unlimited)."""
    if not owner:
        return None
    name = "image_stage_total" if staging else "image_size_total"
    lim = limit(svc, owner, name)
    if lim < 0:
        return None
    used = await _bytes(session, owner, STAGED if staging else ())
    return max(0, lim * MiB - used)


def too_large(svc: ImageService, owner: str | None, attempted: int, *,
              staging: bool = False) -> PayloadTooLarge:
    name = "image_stage_total" if staging else "image_size_total"
    lim = limit(svc, owner, name) if owner else -1
    return PayloadTooLarge(
        f"Denying attempt to upload image because it exceeds the quota: {name} is "
        f"{lim} MiB and the upload needs at least {(attempted + MiB - 1) // MiB} MiB more "
        "than the project has left." if lim >= 0 else
        f"Image exceeds the storage size limit of {svc.settings.image_size_cap} bytes.")


async def usage(session: AsyncSession, svc: ImageService, owner: str) -> dict[str, Any]:
    used = {
        "image_count_total": await _count(session, owner),
        "image_count_uploading": await _count(session, owner, IN_FLIGHT),
        "image_size_total": await _bytes(session, owner) // MiB,
        "image_stage_total": await _bytes(session, owner, STAGED) // MiB,
    }
    return {"usage": {name: {"limit": limit(svc, owner, name), "usage": used[name]}
                      for name in NAMES}}

"""Flavors: sizes servers are booted with, their extra specs and private access lists."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.timeutils import utcnow
from nimbus.compute.errors import flavor_not_found
from nimbus.compute.models import Flavor, FlavorExtraSpec, FlavorProject
from nimbus.web.errors import BadRequest, Conflict, NotFound

SORT_KEYS = {
    "created_at": Flavor.created_at, "description": Flavor.description,
    "disabled": Flavor.disabled, "ephemeral_gb": Flavor.ephemeral_gb,
    "flavorid": Flavor.flavorid, "id": Flavor.id, "is_public": Flavor.is_public,
    "memory_mb": Flavor.memory_mb, "name": Flavor.name, "root_gb": Flavor.root_gb,
    "rxtx_factor": Flavor.rxtx_factor, "swap": Flavor.swap, "updated_at": Flavor.updated_at,
    "vcpu_weight": Flavor.vcpu_weight, "vcpus": Flavor.vcpus,
}

# DevStack's flavors (ids as DevStack gives them), plus the small ones the test image fits.
BOOTSTRAP = [
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 20, 1),
    ("3", "m1.medium", 4096, 40, 2),
    ("4", "m1.large", 8192, 80, 4),
    ("5", "m1.xlarge", 16384, 160, 8),
    ("42", "m1.nano", 128, 1, 1),
    ("84", "m1.micro", 192, 1, 1),
]


class Cache:
    """Flavors by id as instances snapshot them, for a couple of seconds: every boot reads
    its flavor, flavors rarely change (and changes made here clear it at once)."""

    TTL = 2.0

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, ref: str) -> dict[str, Any] | None:
        import time

        hit = self._items.get(ref)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, ref: str, item: dict[str, Any]) -> None:
        import time

        self._items[ref] = (time.monotonic() + self.TTL, item)

    def clear(self) -> None:
        self._items.clear()


async def get(session: AsyncSession, flavorid: str) -> Flavor:
    flavor = (await session.scalars(select(Flavor).where(Flavor.flavorid == flavorid))).first()
    if flavor is None:
        raise flavor_not_found(flavorid)
    return flavor


async def find(session: AsyncSession, ref: str) -> Flavor | None:
    """A flavor by id, or by the last path segment of a flavor link."""
    ref = ref.rstrip("/").rsplit("/", 1)[-1]
    return (await session.scalars(select(Flavor).where(Flavor.flavorid == ref))).first()


async def extra_specs(session: AsyncSession, flavor_ids: list[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {fid: {} for fid in flavor_ids}
    if flavor_ids:
        for fid, key, value in (await session.execute(select(
                FlavorExtraSpec.flavor_id, FlavorExtraSpec.key, FlavorExtraSpec.value).where(
                FlavorExtraSpec.flavor_id.in_(flavor_ids)))).all():
            out[fid][key] = value
    return out


def accessible(ctx: RequestContext) -> Any:
    """Public flavors, and private ones shared with the caller's project."""
    shared = select(FlavorProject.flavor_id).where(FlavorProject.project_id == ctx.project_id)
    return or_(Flavor.is_public.is_(True), Flavor.id.in_(shared))


async def can_use(session: AsyncSession, ctx: RequestContext, flavor: Flavor) -> bool:
    if flavor.is_public or ctx.is_admin:
        return True
    return await session.get(FlavorProject, (flavor.id, ctx.project_id)) is not None


async def list_flavors(session: AsyncSession, ctx: RequestContext, *, is_public: bool | None,
                       min_ram: int | None, min_disk: int | None, name: str | None,
                       sort_key: str, sort_dir: str, limit: int,
                       marker: str | None) -> list[Flavor]:
    query = select(Flavor)
    if ctx.is_admin:
        if is_public is not None:
            query = query.where(Flavor.is_public.is_(is_public))
    else:
        query = query.where(accessible(ctx), Flavor.disabled.is_(False))
        if is_public is False:
            query = query.where(Flavor.is_public.is_(False))
    if min_ram is not None:
        query = query.where(Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(Flavor.root_gb >= min_disk)
    if name is not None:
        query = query.where(Flavor.name == name)
    rows = list((await session.scalars(query)).all())
    attr = SORT_KEYS[sort_key].key
    desc = sort_dir == "desc"
    present = [r for r in rows if getattr(r, attr) is not None]
    missing = [r for r in rows if getattr(r, attr) is None]
    present.sort(key=lambda r: (getattr(r, attr), r.id), reverse=desc)
    missing.sort(key=lambda r: r.id, reverse=desc)
    ordered = missing + present if not desc else present + missing
    if marker is not None:
        index = next((i for i, r in enumerate(ordered) if r.flavorid == marker), None)
        if index is None:
            raise BadRequest(f"marker [{marker}] not found")
        ordered = ordered[index + 1:]
    return ordered[:limit]


async def create(session: AsyncSession, data: dict[str, Any]) -> Flavor:
    name = data["name"].strip()
    flavorid = data.get("id")
    if flavorid is None:
        flavorid = str(uuid.uuid4())
    elif isinstance(flavorid, float) and flavorid.is_integer():
        flavorid = str(int(flavorid))
    else:
        flavorid = str(flavorid).strip()
    if await session.scalar(select(func.count()).select_from(Flavor).where(
            Flavor.name == name)):
        raise Conflict(f"Flavor with name {name} already exists.")
    if await session.scalar(select(func.count()).select_from(Flavor).where(
            Flavor.flavorid == flavorid)):
        raise Conflict(f"Flavor with ID {flavorid} already exists.")
    flavor = Flavor(
        flavorid=flavorid, name=name, memory_mb=int(data["ram"]), vcpus=int(data["vcpus"]),
        root_gb=int(data["disk"]), ephemeral_gb=int(data.get("OS-FLV-EXT-DATA:ephemeral", 0)),
        swap=int(data.get("swap", 0) or 0), rxtx_factor=float(data.get("rxtx_factor", 1.0)),
        is_public=_bool(data.get("os-flavor-access:is_public", True)),
        description=data.get("description"), disabled=False, created_at=utcnow())
    session.add(flavor)
    await session.flush()
    return flavor


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "on", "yes")


async def delete_flavor(session: AsyncSession, flavorid: str) -> None:
    flavor = await get(session, flavorid)
    await session.execute(delete(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id == flavor.id))
    await session.execute(delete(FlavorProject).where(FlavorProject.flavor_id == flavor.id))
    await session.delete(flavor)


async def set_extra_specs(session: AsyncSession, flavor: Flavor, specs: dict[str, Any]) -> None:
    existing = {row.key: row for row in (await session.scalars(select(FlavorExtraSpec).where(
        FlavorExtraSpec.flavor_id == flavor.id))).all()}
    for key, value in specs.items():
        text = _spec_text(value)
        if key in existing:
            existing[key].value = text
        else:
            session.add(FlavorExtraSpec(flavor_id=flavor.id, key=key, value=text))
    flavor.updated_at = utcnow()


def _spec_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    return str(value)


async def delete_extra_spec(session: AsyncSession, flavor: Flavor, key: str) -> None:
    row = await session.get(FlavorExtraSpec, (flavor.id, key))
    if row is None:
        raise NotFound(f"Flavor {flavor.flavorid} has no extra specs with key {key}.")
    await session.delete(row)


async def access_list(session: AsyncSession, flavor: Flavor) -> list[dict[str, str]]:
    rows = (await session.scalars(select(FlavorProject.project_id).where(
        FlavorProject.flavor_id == flavor.id).order_by(FlavorProject.project_id))).all()
    return [{"flavor_id": flavor.flavorid, "tenant_id": pid} for pid in rows]


async def add_access(session: AsyncSession, flavor: Flavor, project_id: str) -> None:
    if await session.get(FlavorProject, (flavor.id, project_id)) is not None:
        raise Conflict(f"Flavor access already exists for flavor {flavor.flavorid} and "
                       f"project {project_id} combination.")
    session.add(FlavorProject(flavor_id=flavor.id, project_id=project_id))


async def remove_access(session: AsyncSession, flavor: Flavor, project_id: str) -> None:
    row = await session.get(FlavorProject, (flavor.id, project_id))
    if row is None:
        raise NotFound(f"Flavor access not found for {flavor.flavorid} / {project_id} "
                       "combination.")
    await session.delete(row)


def snapshot(flavor: Flavor, specs: dict[str, str]) -> dict[str, Any]:
    """What an instance keeps of its flavor (the flavor may change or go later)."""
    return {"id": flavor.id, "flavorid": flavor.flavorid, "name": flavor.name,
            "memory_mb": flavor.memory_mb, "vcpus": flavor.vcpus, "root_gb": flavor.root_gb,
            "ephemeral_gb": flavor.ephemeral_gb, "swap": flavor.swap,
            "rxtx_factor": flavor.rxtx_factor, "vcpu_weight": flavor.vcpu_weight,
            "is_public": flavor.is_public, "disabled": flavor.disabled,
            "description": flavor.description, "extra_specs": dict(specs)}


async def bootstrap(session: AsyncSession) -> None:
    have = set((await session.scalars(select(Flavor.name))).all())
    ids = set((await session.scalars(select(Flavor.flavorid))).all())
    for flavorid, name, ram, disk, vcpus in BOOTSTRAP:
        if name in have or flavorid in ids:
            continue
        session.add(Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus,
                           root_gb=disk, ephemeral_gb=0, swap=0, rxtx_factor=1.0,
                           is_public=True, disabled=False, created_at=utcnow()))

"""Subnet pools: prefixes that subnets take their CIDRs from, with prefix length bounds,
an optional address scope, sharing and a per-project default."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.context import RequestContext
from nimbus.common.ids import new_uuid
from nimbus.network import access, query, standard
from nimbus.network import validators as v
from nimbus.network.errors import bad_request, conflict, in_use, invalid_input, not_found
from nimbus.network.models import AddressScope, RBACPolicy, Subnet, SubnetPool


def _prefixes(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise invalid_input(f"'{value}' is not a valid list of prefixes")
    return [str(v.cidr(p, field, strict=False)) for p in value]


def _plen(value: Any, field: str) -> int:
    return v.integer(value, field, 0, 128)


SPEC = {
    "name": v.Attr(v.name255), "description": v.Attr(v.name255),
    "prefixes": v.Attr(_prefixes, required=True),
    "default_prefixlen": v.Attr(_plen), "min_prefixlen": v.Attr(_plen),
    "max_prefixlen": v.Attr(_plen), "shared": v.Attr(v.boolean, put=False),
    "is_default": v.Attr(v.boolean),
    "default_quota": v.Attr(v.nullable(lambda x, f: v.integer(x, f, 0))),
    "address_scope_id": v.Attr(v.uuid_or_none),
    "tenant_id": v.Attr(v.project, put=False), "project_id": v.Attr(v.project, put=False),
    "tags": v.Attr(lambda x, f: standard.validate_tags(x), put=False),
}

COLUMNS: query.Columns = {
    "id": SubnetPool.id, "name": SubnetPool.name, "description": SubnetPool.description,
    "project_id": SubnetPool.project_id, "ip_version": SubnetPool.ip_version,
    "default_prefixlen": SubnetPool.default_prefixlen,
    "min_prefixlen": SubnetPool.min_prefixlen, "max_prefixlen": SubnetPool.max_prefixlen,
    "shared": SubnetPool.shared, "is_default": SubnetPool.is_default,
    "address_scope_id": SubnetPool.address_scope_id,
    "revision_number": SubnetPool.revision_number, "created_at": SubnetPool.created_at,
    "updated_at": SubnetPool.updated_at,
}


def visibility(ctx: RequestContext) -> Any:
    return access.visible(ctx, SubnetPool, "subnetpool", ("access_as_shared",),
                          SubnetPool.shared)


async def get(session: AsyncSession, ctx: RequestContext, pool_id: str) -> SubnetPool:
    q = access.restrict(select(SubnetPool).where(SubnetPool.id == pool_id), visibility(ctx))
    pool = (await session.scalars(q)).first()
    if pool is None:
        raise not_found("subnetpool", pool_id)
    return pool


async def listing(session: AsyncSession, ctx: RequestContext,
                  params: query.ListParams) -> tuple[list[SubnetPool], bool]:
    q = access.restrict(select(SubnetPool), visibility(ctx))
    q = query.apply_filters(q, COLUMNS, params)
    q = query.apply_tags(q, SubnetPool.id, params)
    return await query.paginate(session, q, SubnetPool, COLUMNS, params)


def _collapse(prefixes: list[str]) -> list[str]:
    nets = [ipaddress.ip_network(p) for p in prefixes]
    versions = {n.version for n in nets}
    if len(versions) != 1:
        raise invalid_input("Illegal subnetpool: prefixes of different IP versions")
    return [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[arg-type,type-var]


def _lengths(data: dict[str, Any], version: int, current: SubnetPool | None,
             prefixes: list[str]) -> tuple[int, int, int]:
    widest = min(ipaddress.ip_network(p).prefixlen for p in prefixes)
    top = 32 if version == 4 else 128
    min_len = data.get("min_prefixlen", current.min_prefixlen if current else widest)
    max_len = data.get("max_prefixlen", current.max_prefixlen if current else top)
    default = data.get("default_prefixlen", current.default_prefixlen if current else min_len)
    if max_len > top:
        raise invalid_input(f"Illegal prefix bounds: max_prefixlen {max_len} exceeds {top}")
    if min_len < widest:
        raise invalid_input(f"Illegal prefix bounds: min_prefixlen {min_len} is less than the "
                            f"prefix length of the pool's prefixes ({widest})")
    if not min_len <= default <= max_len:
        raise bad_request(f"Illegal prefix bounds: min_prefixlen={min_len}, "
                          f"default_prefixlen={default}, max_prefixlen={max_len}.",
                          "IllegalSubnetPoolPrefixBounds")
    return min_len, max_len, default


async def _check_scope(session: AsyncSession, ctx: RequestContext, scope_id: str | None,
                       version: int) -> None:
    if scope_id is None:
        return
    scope = await session.get(AddressScope, scope_id)
    if scope is None or not (ctx.is_admin or scope.shared or scope.project_id ==
                             access.project_of(ctx)
                             or await access.shared_with(session, ctx, "address_scope",
                                                         scope_id)):
        raise not_found("address_scope", scope_id)
    if scope.ip_version != version:
        raise bad_request(f"Illegal subnetpool association: subnetpool cannot be associated "
                          f"with address scope {scope_id} of another IP version.",
                          "IllegalSubnetPoolIpVersionAssociationWithAddressScope")


async def create(session: AsyncSession, ctx: RequestContext, data: dict[str, Any],
                 project_id: str) -> SubnetPool:
    prefixes = _collapse(data["prefixes"])
    version = ipaddress.ip_network(prefixes[0]).version
    min_len, max_len, default = _lengths(data, version, None, prefixes)
    await _check_scope(session, ctx, data.get("address_scope_id"), version)
    if data.get("is_default"):
        await _check_default(session, version, project_id, None)
    pool = SubnetPool(
        id=new_uuid(), project_id=project_id, name=data.get("name", ""),
        description=data.get("description", ""), ip_version=version, prefixes=prefixes,
        default_prefixlen=default, min_prefixlen=min_len, max_prefixlen=max_len,
        shared=data.get("shared", False), is_default=data.get("is_default", False),
        default_quota=data.get("default_quota"),
        address_scope_id=data.get("address_scope_id"), revision_number=0)
    session.add(pool)
    await session.flush()
    if pool.shared:
        session.add(RBACPolicy(id=new_uuid(), project_id=project_id, object_type="subnetpool",
                               object_id=pool.id, action="access_as_shared",
                               target_tenant="*", description="", revision_number=0))
    if data.get("tags"):
        await standard.set_tags(session, pool.id, data["tags"])
    return pool


async def _check_default(session: AsyncSession, version: int, project_id: str,
                         skip: str | None) -> None:
    other = await session.scalar(select(SubnetPool.id).where(
        SubnetPool.is_default.is_(True), SubnetPool.ip_version == version,
        SubnetPool.id != (skip or "")).limit(1))
    if other:
        raise invalid_input(f"A default subnetpool for this IP family has already been set. "
                            f"Only one default may exist per IP family ({other})")


async def update(session: AsyncSession, ctx: RequestContext, pool: SubnetPool,
                 data: dict[str, Any]) -> None:
    for key in ("name", "description", "default_quota"):
        if key in data:
            setattr(pool, key, data[key] if data[key] is not None or key == "default_quota"
                    else "")
    prefixes = pool.prefixes
    if "prefixes" in data:
        prefixes = _collapse([*data["prefixes"]])
        if ipaddress.ip_network(prefixes[0]).version != pool.ip_version:
            raise invalid_input("Illegal subnetpool update: a prefix of another IP version")
        for old in pool.prefixes:
            old_net = ipaddress.ip_network(old)
            if not any(old_net.subnet_of(ipaddress.ip_network(p))  # type: ignore[arg-type]
                       for p in prefixes):
                raise bad_request(f"Illegal update to prefixes: {old} is removed; prefixes may "
                                  "only grow.", "IllegalSubnetPoolPrefixUpdate")
    min_len, max_len, default = _lengths(data, pool.ip_version, pool, prefixes)
    pool.prefixes, pool.min_prefixlen, pool.max_prefixlen = prefixes, min_len, max_len
    pool.default_prefixlen = default
    if "address_scope_id" in data and data["address_scope_id"] != pool.address_scope_id:
        await _check_scope(session, ctx, data["address_scope_id"], pool.ip_version)
        pool.address_scope_id = data["address_scope_id"]
    if "is_default" in data:
        if data["is_default"]:
            await _check_default(session, pool.ip_version, pool.project_id, pool.id)
        pool.is_default = data["is_default"]
    standard.bump(pool)


async def delete_pool(session: AsyncSession, pool: SubnetPool) -> None:
    used = await session.scalar(select(func.count()).select_from(Subnet).where(
        Subnet.subnetpool_id == pool.id))
    if used:
        raise in_use("subnetpool", pool.id)
    await session.execute(delete(RBACPolicy).where(
        RBACPolicy.object_type == "subnetpool", RBACPolicy.object_id == pool.id))
    await standard.drop_tags(session, pool.id)
    await session.delete(pool)


async def remove_prefixes(session: AsyncSession, pool: SubnetPool, prefixes: list[str]) -> None:
    gone = [ipaddress.ip_network(p) for p in prefixes]
    used = [ipaddress.ip_network(c) for c in (await session.scalars(select(Subnet.cidr).where(
        Subnet.subnetpool_id == pool.id))).all()]
    for net in gone:
        if any(u.overlaps(net) for u in used):
            raise bad_request(f"Illegal update to prefixes: prefix {net} is in use by a subnet.",
                              "IllegalSubnetPoolPrefixUpdate")
    remaining: list[Any] = []
    for p in pool.prefixes:
        current = [ipaddress.ip_network(p)]
        for net in gone:
            nxt: list[Any] = []
            for c in current:
                if c.version == net.version and net.subnet_of(c):  # type: ignore[arg-type]
                    nxt.extend(c.address_exclude(net))  # type: ignore[arg-type]
                elif c.version == net.version and c.subnet_of(net):  # type: ignore[arg-type]
                    continue
                else:
                    nxt.append(c)
            current = nxt
        remaining.extend(current)
    if not remaining:
        raise bad_request("Illegal update to prefixes: a subnet pool keeps at least one "
                          "prefix.", "IllegalSubnetPoolPrefixUpdate")
    pool.prefixes = _collapse([str(r) for r in remaining])
    standard.bump(pool)


# -- used by subnets ---------------------------------------------------------------------------
async def for_subnet(session: AsyncSession, ctx: RequestContext, data: dict[str, Any],
                     version: int) -> SubnetPool | None:
    pool_id = data.get("subnetpool_id")
    if pool_id is None and data.get("use_default_subnetpool"):
        pool_id = await session.scalar(select(SubnetPool.id).where(
            SubnetPool.is_default.is_(True), SubnetPool.ip_version == version).limit(1))
        if pool_id is None:
            raise bad_request(f"No default subnetpool found for IPv{version}",
                              "BadRequest")
    if pool_id is None:
        return None
    pool = await get(session, ctx, pool_id)
    if pool.ip_version != version:
        raise invalid_input(f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} "
                            "subnet pool")
    return pool


async def allocate_cidr(session: AsyncSession, pool: SubnetPool, cidr: str | None,
                        prefixlen: int | None, project_id: str = "") -> str:
    chosen = await _allocate_cidr(session, pool, cidr, prefixlen)
    if pool.default_quota is not None and project_id:
        await _check_pool_quota(session, pool, project_id, chosen)
    return chosen


async def _check_pool_quota(session: AsyncSession, pool: SubnetPool, project_id: str,
                            cidr: str) -> None:
    """default_quota counts addresses (IPv4) or /64s (IPv6) a project may take from the pool."""
    def units(text: str) -> int:
        net = ipaddress.ip_network(text)
        return net.num_addresses if net.version == 4 else max(1, net.num_addresses >> 64)

    used = sum(units(c) for c in (await session.scalars(select(Subnet.cidr).where(
        Subnet.subnetpool_id == pool.id, Subnet.project_id == project_id))).all())
    assert pool.default_quota is not None
    if used + units(cidr) > pool.default_quota:
        raise conflict(f"Per-tenant subnet pool prefix quota exceeded: {cidr} would exceed "
                       f"the quota of {pool.default_quota}.", "SubnetPoolQuotaExceeded")


async def _allocate_cidr(session: AsyncSession, pool: SubnetPool, cidr: str | None,
                         prefixlen: int | None) -> str:
    taken = [ipaddress.ip_network(c) for c in (await session.scalars(select(Subnet.cidr).where(
        Subnet.subnetpool_id == pool.id))).all()]
    prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
    if cidr is not None:
        wanted = ipaddress.ip_network(cidr)
        if not any(wanted.version == p.version and wanted.subnet_of(p)  # type: ignore[arg-type]
                   for p in prefixes):
            raise bad_request(f"Unable to allocate subnet with prefix {cidr}: it is not in the "
                              "subnet pool's prefixes.", "SubnetAllocationError")
        if not pool.min_prefixlen <= wanted.prefixlen <= pool.max_prefixlen:
            raise bad_request(f"Unable to allocate subnet with prefix length "
                              f"{wanted.prefixlen}, minimum allowed prefix is "
                              f"{pool.min_prefixlen}, maximum allowed prefix is "
                              f"{pool.max_prefixlen}.", "SubnetAllocationError")
        if any(wanted.overlaps(t) for t in taken):
            raise conflict(f"Unable to allocate subnet with prefix {cidr}: it overlaps with a "
                           "subnet of the pool.", "SubnetAllocationError")
        return str(wanted)
    plen = prefixlen if prefixlen is not None else pool.default_prefixlen
    if not pool.min_prefixlen <= plen <= pool.max_prefixlen:
        raise bad_request(f"Unable to allocate subnet with prefix length {plen}, minimum "
                          f"allowed prefix is {pool.min_prefixlen}, maximum allowed prefix is "
                          f"{pool.max_prefixlen}.", "SubnetAllocationError")
    for prefix in prefixes:
        if plen < prefix.prefixlen:
            continue
        for candidate in _candidates(prefix, plen):
            if not any(candidate.overlaps(t) for t in taken):
                return str(candidate)
    raise conflict("Insufficient prefix space to allocate subnet size /" + str(plen),
                   "SubnetAllocationError")


def _candidates(prefix: Any, plen: int) -> Any:
    step = 1 << (prefix.max_prefixlen - plen)
    base = int(prefix.network_address)
    make = ipaddress.ip_network
    for i in range(min(1 << (plen - prefix.prefixlen), 1 << 16)):
        yield make((base + i * step, plen))


def render(pool: SubnetPool, tags: dict[str, list[str]]) -> dict[str, Any]:
    body = standard.standard(pool)
    body.update({
        "name": pool.name, "ip_version": pool.ip_version, "prefixes": list(pool.prefixes),
        "default_prefixlen": pool.default_prefixlen, "min_prefixlen": pool.min_prefixlen,
        "max_prefixlen": pool.max_prefixlen, "shared": pool.shared,
        "is_default": pool.is_default, "default_quota": pool.default_quota,
        "address_scope_id": pool.address_scope_id, "tags": tags.get(pool.id, []),
    })
    return body

"""IP address management: pools, gateway, and allocations that are never handed out twice.

Each allocation is a row whose primary key is (subnet, address). Writers of one subnet are
serialised by locking the subnet row (SELECT ... FOR UPDATE on PostgreSQL and MariaDB; SQLite
serialises writers already), so the free address read is still free when inserted; the key
stays the last word if anything else inserts behind our back.
"""

from __future__ import annotations

import functools
import ipaddress
import random
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.network.errors import conflict, invalid_input
from nimbus.network.models import IPAllocation, Subnet

Range = tuple[int, int]
SLAAC_MODES = ("slaac", "dhcpv6-stateless")
PROBES = 32
SCAN_LIMIT = 4096
ALLOCATIONS = cast(Table, IPAllocation.__table__)  # for plain INSERTs, without the unit of work


def network_of(subnet: Subnet) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(subnet.cidr)


def default_pools(cidr: str, gateway: str | None) -> list[dict[str, str]]:
    net = ipaddress.ip_network(cidr)
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    if net.version == 4 and net.prefixlen >= 31:
        first, last = int(net.network_address), int(net.broadcast_address)
    ranges: list[Range] = [(first, last)] if first <= last else []
    if gateway:
        ranges = _minus(ranges, int(ipaddress.ip_address(gateway)))
    return [as_pool(r, net.version) for r in ranges]


def _minus(ranges: list[Range], point: int) -> list[Range]:
    out: list[Range] = []
    for low, high in ranges:
        if low <= point <= high:
            if low < point:
                out.append((low, point - 1))
            if point < high:
                out.append((point + 1, high))
        else:
            out.append((low, high))
    return out


def as_pool(r: Range, version: int) -> dict[str, str]:
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return {"start": str(make(r[0])), "end": str(make(r[1]))}


def ranges_of(subnet: Subnet) -> list[Range]:
    return list(_ranges(tuple((p["start"], p["end"]) for p in subnet.allocation_pools or [])))


@functools.lru_cache(maxsize=4096)
def _ranges(pools: tuple[tuple[str, str], ...]) -> tuple[Range, ...]:
    """Pools as integer ranges (parsed once: every port create asks)."""
    return tuple((int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end)))
                 for start, end in pools)


def pool_size(subnet: Subnet) -> int:
    return sum(high - low + 1 for low, high in ranges_of(subnet))


def is_auto_address(subnet: Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in SLAAC_MODES


def eui64(cidr: str, mac: str) -> str:
    net = ipaddress.ip_network(cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    value = int(net.network_address) | int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(value))


async def lock_subnets(session: AsyncSession, subnet_ids: Sequence[str]) -> None:
    """Serialise allocations per subnet, in a fixed order so two ports never deadlock."""
    if session.get_bind().dialect.name == "sqlite" or not subnet_ids:
        return
    await session.execute(select(Subnet.id).where(Subnet.id.in_(sorted(set(subnet_ids))))
                          .order_by(Subnet.id).with_for_update())


def check_address(subnet: Subnet, address: str) -> str:
    """A requested fixed IP: a valid host address of the subnet."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise invalid_input(f"'{address}' is not a valid IP address") from None
    net = network_of(subnet)
    if ip not in net:
        raise invalid_input(f"IP address {address} is not a valid IP for the specified subnet.")
    if net.version == 4 and net.prefixlen < 31 and ip in (net.network_address,
                                                          net.broadcast_address):
        raise invalid_input(f"IP address {address} is not a valid IP for the specified subnet.")
    if net.version == 6 and ip == net.network_address:
        raise invalid_input(f"IP address {address} is not a valid IP for the specified subnet.")
    return str(ip)


async def _insert(session: AsyncSession, subnet: Subnet, address: str, port_id: str) -> bool:
    row = IPAllocation(subnet_id=subnet.id, ip_address=address, network_id=subnet.network_id,
                       port_id=port_id)
    if session.get_bind().dialect.name == "sqlite":
        session.add(row)  # one writer at a time: what was read free is still free
        return True
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def allocate_specific(session: AsyncSession, subnet: Subnet, address: str,
                            port_id: str) -> str:
    address = check_address(subnet, address)
    taken = await session.get(IPAllocation, (subnet.id, address))
    if taken is None and session.get_bind().dialect.name == "sqlite":
        await session.flush()
        taken = await session.get(IPAllocation, (subnet.id, address))
    if taken is not None or not await _insert(session, subnet, address, port_id):
        raise conflict(f"Unable to complete operation for network {subnet.network_id}. The "
                       f"IP address {address} is in use.", "IpAddressAlreadyAllocated")
    return address


async def allocate_any(session: AsyncSession, subnet: Subnet, port_id: str,
                       mac: str | None = None, *, blind: bool = False) -> str:
    """A free address of the subnet's pools.

    blind: the caller knows the pool is nearly empty (see plancache), so a random address is
    taken without looking; the primary key refuses the rare clash and the caller retries
    without `blind`."""
    if is_auto_address(subnet):
        if mac is None:
            raise invalid_input("a MAC address is needed for SLAAC addressing")
        return await allocate_specific(session, subnet, eui64(subnet.cidr, mac), port_id)
    ranges = ranges_of(subnet)
    total = sum(high - low + 1 for low, high in ranges)
    make = ipaddress.IPv4Address if subnet.ip_version == 4 else ipaddress.IPv6Address
    if blind and total > SCAN_LIMIT:
        address = _random(ranges, total, make)
        await session.execute(insert(ALLOCATIONS), [{
            "subnet_id": subnet.id, "ip_address": address, "network_id": subnet.network_id,
            "port_id": port_id}])
        return address
    for _ in range(4):
        if total > SCAN_LIMIT:
            candidate = await _probe(session, subnet, ranges, total, make)
        else:
            candidate = await _scan(session, subnet, ranges, make)
        if candidate is None:
            break
        if await _insert(session, subnet, candidate, port_id):
            return candidate
    raise conflict(f"No more IP addresses available for subnet {subnet.id}.",
                   "IpAddressGenerationFailure")


async def _scan(session: AsyncSession, subnet: Subnet, ranges: list[Range],
                make: Any) -> str | None:
    used = set((await session.scalars(select(IPAllocation.ip_address).where(
        IPAllocation.subnet_id == subnet.id))).all())
    for low, high in ranges:
        for value in range(low, high + 1):
            text = str(make(value))
            if text not in used:
                return text
    return None


def _random(ranges: list[Range], total: int, make: Any) -> str:
    offset = random.SystemRandom().randrange(total)
    for low, high in ranges:
        size = high - low + 1
        if offset < size:
            return str(make(low + offset))
        offset -= size
    raise AssertionError("offset outside the pools")


async def _probe(session: AsyncSession, subnet: Subnet, ranges: list[Range], total: int,
                 make: Any) -> str | None:
    """Large pools: try random addresses, then fall back to walking the pool."""
    rng = random.SystemRandom()
    picks: set[str] = set()
    for _ in range(PROBES):
        offset = rng.randrange(total)
        for low, high in ranges:
            size = high - low + 1
            if offset < size:
                picks.add(str(make(low + offset)))
                break
            offset -= size
    taken = set((await session.scalars(select(IPAllocation.ip_address).where(
        IPAllocation.subnet_id == subnet.id, IPAllocation.ip_address.in_(picks)))).all())
    free = sorted(picks - taken)
    if free:
        return free[0]
    used_count = await session.scalar(select(func.count()).select_from(IPAllocation).where(
        IPAllocation.subnet_id == subnet.id))
    if (used_count or 0) >= total:
        return None
    return await _scan(session, subnet, ranges, make)


async def release(session: AsyncSession, port_id: str, subnet_id: str | None = None,
                  address: str | None = None) -> None:
    q = delete(IPAllocation).where(IPAllocation.port_id == port_id)
    if subnet_id is not None:
        q = q.where(IPAllocation.subnet_id == subnet_id)
    if address is not None:
        q = q.where(IPAllocation.ip_address == address)
    await session.execute(q)


async def used_count(session: AsyncSession, subnet_id: str) -> int:
    count = await session.scalar(select(func.count()).select_from(IPAllocation).where(
        IPAllocation.subnet_id == subnet_id))
    return int(count or 0)

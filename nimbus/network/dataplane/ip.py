"""Links, addresses and routes through iproute2, in a given namespace (None = root)."""

from __future__ import annotations

import json
from typing import Any

from nimbus.common.netns import CommandError, run


async def ip(namespace: str | None, *args: str, check: bool = True) -> str:
    return (await run(["ip", *args], namespace=namespace, check=check)).stdout


async def links(namespace: str | None) -> dict[str, dict[str, Any]]:
    """name -> `ip -j link` entry."""
    out = await ip(namespace, "-j", "link", "show")
    return {item["ifname"]: item for item in json.loads(out or "[]")}


async def link_exists(namespace: str | None, name: str) -> bool:
    done = await run(["ip", "link", "show", "dev", name], namespace=namespace, check=False)
    return done.returncode == 0


async def delete_link(namespace: str | None, name: str) -> None:
    """Remove a link; one that is not there is not an error."""
    await ip(namespace, "link", "del", "dev", name, check=False)


async def set_up(namespace: str | None, name: str, *, mtu: int | None = None,
                 master: str | None = None, address: str | None = None) -> None:
    args = ["link", "set", "dev", name]
    if mtu:
        args += ["mtu", str(mtu)]
    if master:
        args += ["master", master]
    if address:
        args += ["address", address]
    await ip(namespace, *args, "up")


async def ensure_bridge(namespace: str | None, name: str, *, mtu: int | None = None) -> None:
    if not await link_exists(namespace, name):
        try:
            # No STP and no forwarding delay: a guest's first DHCP packet must pass at once.
            await ip(namespace, "link", "add", name, "type", "bridge", "stp_state", "0",
                     "forward_delay", "0")
        except CommandError:
            if not await link_exists(namespace, name):
                raise
    await set_up(namespace, name, mtu=mtu)


async def add_veth(namespace: str | None, name: str, peer: str,
                   peer_namespace: str | None) -> None:
    """A veth pair with `name` in `namespace` and `peer` moved to `peer_namespace`."""
    await ip(namespace, "link", "add", name, "type", "veth", "peer", "name", peer)
    if peer_namespace != namespace:
        await ip(namespace, "link", "set", "dev", peer, "netns", peer_namespace or "1")


async def add_tap(namespace: str | None, name: str) -> None:
    await ip(namespace, "tuntap", "add", "dev", name, "mode", "tap")


async def add_vxlan(namespace: str | None, name: str, vni: int, local: str, *,
                    dev: str | None = None, port: int = 4789) -> None:
    args = ["link", "add", name, "type", "vxlan", "id", str(vni), "local", local,
            "dstport", str(port), "nolearning"]
    if dev:
        args += ["dev", dev]
    await ip(namespace, *args)


async def replace_addr(namespace: str | None, dev: str, cidr: str) -> None:
    await ip(namespace, "addr", "replace", cidr, "dev", dev)


async def del_addr(namespace: str | None, dev: str, cidr: str) -> None:
    await ip(namespace, "addr", "del", cidr, "dev", dev, check=False)


async def addresses(namespace: str | None, dev: str) -> list[str]:
    """The device's addresses as address/prefixlen."""
    out = await ip(namespace, "-j", "addr", "show", "dev", dev, check=False)
    items = json.loads(out or "[]")
    return [f"{a['local']}/{a['prefixlen']}" for item in items
            for a in item.get("addr_info", []) if a.get("scope") != "link"]


async def replace_route(namespace: str | None, dest: str, *, via: str | None = None,
                        dev: str | None = None) -> None:
    args = ["route", "replace", dest]
    if via:
        args += ["via", via]
    if dev:
        args += ["dev", dev]
    await ip(namespace, *args)


async def fdb_append(namespace: str | None, dev: str, mac: str, dst: str) -> None:
    await run(["bridge", "fdb", "append", mac, "dev", dev, "dst", dst], namespace=namespace)


async def fdb_delete(namespace: str | None, dev: str, mac: str, dst: str) -> None:
    await run(["bridge", "fdb", "del", mac, "dev", dev, "dst", dst], namespace=namespace,
              check=False)


async def sysctl(namespace: str | None, key: str, value: str) -> None:
    await run(["sysctl", "-q", "-w", f"{key}={value}"], namespace=namespace)


# -- added for the DHCP and L3 agents ---------------------------------------------------------
async def plug_veth(namespace: str | None, tap: str, inner_namespace: str, inner: str, *,
                    mac: str | None = None, mtu: int | None = None) -> bool:
    """A veth pair: `tap` in `namespace` (where the L2 agent puts it on a bridge) and `inner`
    in `inner_namespace` with `mac`; both up. Returns True when it had to be made."""
    made = False
    if not (await link_exists(inner_namespace, inner) and await link_exists(namespace, tap)):
        await delete_link(inner_namespace, inner)
        await delete_link(namespace, tap)
        await add_veth(namespace, tap, inner, inner_namespace)
        made = True
    await set_up(inner_namespace, inner, mtu=mtu, address=mac)
    await set_up(namespace, tap, mtu=mtu)
    return made


async def add_addr(namespace: str | None, dev: str, cidr: str) -> None:
    """Add an address; IPv6 ones skip duplicate address detection (usable at once)."""
    extra = ["nodad"] if ":" in cidr else []
    await ip(namespace, "addr", "replace", cidr, "dev", dev, *extra)


async def gateway_routes(namespace: str | None) -> list[tuple[str, str]]:
    """(destination, via) of the routes through a gateway, both families."""
    out: list[tuple[str, str]] = []
    for family in ("-4", "-6"):
        text = await ip(namespace, family, "-j", "route", "show", check=False)
        for item in json.loads(text or "[]"):
            if item.get("gateway"):
                dst = item.get("dst", "default")
                if dst == "default":
                    dst = "0.0.0.0/0" if family == "-4" else "::/0"
                elif "/" not in dst:
                    dst += "/32" if family == "-4" else "/128"
                out.append((dst, item["gateway"]))
    return out


async def del_route(namespace: str | None, dest: str, via: str | None = None) -> None:
    args = ["route", "del", dest] + (["via", via] if via else [])
    await ip(namespace, *args, check=False)

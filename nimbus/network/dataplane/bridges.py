"""A node's layer 2 for the Linux bridge agent: one bridge per network (brq<net id[:11]>),
the segment's uplink on it (a VXLAN device, or the mapped physical interface of a flat
network), ports plugged into it, and the VXLAN forwarding entries (l2pop style, findings §5).

"vlan" networks: this kernel has no 8021q and no bridge VLAN filtering (findings §6), so a
VLAN segment is carried as VXLAN VNI `VLAN_VNI_BASE + vlan id` over the same tunnels, a range
of its own above the VNIs self-service networks get (keep `vxlan_vni_ranges` below it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nimbus.common.netns import CommandError, run
from nimbus.network.dataplane import ip

BRIDGE_PREFIX = "brq"
VXLAN_PREFIX = "vxlan-"
VLAN_VNI_BASE = 0x800000
FLOOD_MAC = "00:00:00:00:00:00"
TUNNELED = ("vxlan", "vlan")


class WiringError(Exception):
    """A port cannot be wired on this node; the message is the reason reported."""


def vni(network: dict[str, Any]) -> int | None:
    """The VXLAN VNI carrying the network on this node; None when it is not tunneled."""
    kind, seg = network.get("network_type"), network.get("segmentation_id")
    if kind == "vxlan" and seg:
        return int(seg)
    if kind == "vlan" and seg:
        return VLAN_VNI_BASE + int(seg)
    return None


def vxlan_name(number: int) -> str:
    return f"{VXLAN_PREFIX}{number}"


@dataclass(frozen=True)
class Uplink:
    """What connects a network's bridge to the other nodes: a VXLAN device or an interface."""

    device: str | None
    vni: int | None = None


def uplink_for(network: dict[str, Any], *, tunnel_ip: str | None,
               mappings: dict[str, str]) -> Uplink:
    kind = network.get("network_type")
    if kind in TUNNELED:
        number = vni(network)
        if number is None:
            raise WiringError(f"{kind} network {network['id']} has no segmentation id")
        if not tunnel_ip:
            # A node without a tunnel address (the all-in-one) keeps the network to itself:
            # its bridge alone, which is all one node needs.
            return Uplink(None)
        return Uplink(vxlan_name(number), number)
    if kind == "flat":
        physnet = network.get("physical_network")
        iface = mappings.get(physnet or "")
        if not iface:
            raise WiringError(f"no interface mapped for physical network {physnet!r} "
                              f"(physical_interface_mappings) on this node")
        return Uplink(iface)
    if kind == "local":
        return Uplink(None)
    raise WiringError(f"network type {kind!r} is not supported by the Linux bridge agent")


async def _underlay_device(namespace: str | None, address: str) -> str | None:
    out = await ip.ip(namespace, "-j", "addr", "show", check=False)
    for item in json.loads(out or "[]"):
        if any(a.get("local") == address for a in item.get("addr_info", [])):
            return str(item["ifname"])
    return None


async def ensure_network(namespace: str | None, network: dict[str, Any], *,
                         tunnel_ip: str | None, mappings: dict[str, str],
                         links: dict[str, dict[str, Any]] | None = None) -> Uplink:
    """The network's bridge, up, with its MTU and its uplink on it (`links`: the
    namespace's links when the caller has just listed them)."""
    uplink = uplink_for(network, tunnel_ip=tunnel_ip, mappings=mappings)
    bridge, mtu = network["bridge"], network.get("mtu") or None
    if links is None:
        links = await ip.links(namespace)
    if bridge in links:
        await ip.set_up(namespace, bridge, mtu=mtu)
    else:
        await ip.ensure_bridge(namespace, bridge, mtu=mtu)
    if uplink.device is None:
        return uplink
    if uplink.vni is not None:
        assert tunnel_ip is not None
        if uplink.device not in links:
            dev = await _underlay_device(namespace, tunnel_ip)
            try:
                await ip.add_vxlan(namespace, uplink.device, uplink.vni, tunnel_ip, dev=dev)
            except CommandError:
                if not await ip.link_exists(namespace, uplink.device):
                    raise
        try:
            await ip.set_up(namespace, uplink.device, mtu=mtu, master=bridge)
        except CommandError:  # an underlay too small for the network MTU: keep the default
            await ip.set_up(namespace, uplink.device, master=bridge)
    else:
        if uplink.device not in links:
            raise WiringError(f"interface {uplink.device} (mapped for physical network "
                              f"{network.get('physical_network')!r}) does not exist")
        await ip.set_up(namespace, uplink.device, master=bridge)
    return uplink


async def plug(namespace: str | None, device: str, bridge: str, mtu: int | None) -> None:
    try:
        await ip.set_up(namespace, device, mtu=mtu, master=bridge)
    except CommandError:  # some devices refuse the MTU (a guest's tap under a running QEMU)
        await ip.set_up(namespace, device, master=bridge)


async def unplug(namespace: str | None, device: str) -> None:
    """Take the device off its bridge (it stays: its owner removes it)."""
    await ip.ip(namespace, "link", "set", "dev", device, "nomaster", check=False)


def master_of(link: dict[str, Any]) -> str | None:
    master = link.get("master")
    return str(master) if master else None


async def remove_network_if_unused(namespace: str | None, bridge: str,
                                   links: dict[str, dict[str, Any]], uplinks: set[str]) -> bool:
    """Delete the bridge (and its VXLAN device) when nothing but an uplink is on it; a mapped
    physical interface is only taken off."""
    if bridge not in links:
        return False
    members = [name for name, link in links.items() if master_of(link) == bridge]
    if any(m not in uplinks and not m.startswith(VXLAN_PREFIX) for m in members):
        return False
    for member in members:
        if member.startswith(VXLAN_PREFIX):
            await ip.delete_link(namespace, member)
        else:
            await unplug(namespace, member)
    await ip.delete_link(namespace, bridge)
    return True


async def fdb_entries(namespace: str | None, device: str) -> set[tuple[str, str]]:
    """(MAC, remote IP) entries of a VXLAN device."""
    out = (await run(["bridge", "-j", "fdb", "show", "dev", device], namespace=namespace,
                     check=False)).stdout
    return {(e["mac"].lower(), e["dst"]) for e in json.loads(out or "[]") if e.get("dst")}


async def sync_fdb(namespace: str | None, device: str, wanted: set[tuple[str, str]]) -> None:
    """Make the device's remote entries exactly `wanted`: an all-zero flood entry per remote
    endpoint, and one entry per remote MAC."""
    have = await fdb_entries(namespace, device)
    for mac, dst in sorted(have - wanted):
        await run(["bridge", "fdb", "del", mac, "dev", device, "dst", dst],
                  namespace=namespace, check=False)
    for mac, dst in sorted(wanted - have):
        verb = "append" if mac == FLOOD_MAC else "replace"
        await run(["bridge", "fdb", verb, mac, "dev", device, "dst", dst],
                  namespace=namespace)


def wanted_fdb(entries: list[dict[str, Any]], local_ip: str | None) -> set[tuple[str, str]]:
    """l2pop entries of remote ports -> the (MAC, tunnel IP) set a VXLAN device needs."""
    out: set[tuple[str, str]] = set()
    for entry in entries:
        dst = entry.get("tunnel_ip")
        if not dst or dst == local_ip:
            continue
        out.add((FLOOD_MAC, dst))
        out.add((entry["mac_address"].lower(), dst))
    return out


async def purge(namespace: str | None) -> list[str]:
    """Delete every brq bridge and VXLAN device of the node; returns what went."""
    links = await ip.links(namespace)
    gone = []
    for name in links:
        if name.startswith(VXLAN_PREFIX):
            await ip.delete_link(namespace, name)
            gone.append(name)
    for name in links:
        if name.startswith(BRIDGE_PREFIX):
            await ip.delete_link(namespace, name)
            gone.append(name)
    return gone

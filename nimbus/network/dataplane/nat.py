"""A router's NAT table (IPv4), written whole and applied atomically with iptables-restore
inside the router's namespace (the namespace is the router's alone, so the table is too).

- floating IP: DNAT of the floating address to the fixed one in PREROUTING (from outside)
  and OUTPUT (from the router itself), SNAT of the fixed address to the floating one when it
  leaves through the gateway device;
- port forwarding: DNAT of floating address + protocol + port to an internal address/port;
- SNAT of every internal IPv4 subnet leaving through the gateway device to the gateway's
  address, when the router's enable_snat is on."""

from __future__ import annotations

import ipaddress
from typing import Any

from nimbus.common import netns


def _v4(address: str | None) -> bool:
    return bool(address) and ipaddress.ip_address(str(address)).version == 4


def _ports(value: Any, sep: str) -> str:
    """A port or range ("8000:8010" / "8000-8010") in iptables' (`:`) or DNAT's (`-`) form."""
    return str(value).replace(":", "-").replace("-", sep)


def table(router: dict[str, Any], gateway_device: str | None) -> str:
    pre: list[str] = []
    out: list[str] = []
    post: list[str] = []
    if gateway_device:
        for pf in router.get("port_forwardings") or []:
            fip, inner = pf["floating_ip_address"], pf["internal_ip_address"]
            if not (_v4(fip) and _v4(inner)):
                continue
            proto = str(pf["protocol"]).lower()
            match = (f"-d {fip}/32 -p {proto} -m {proto} "
                     f"--dport {_ports(pf['external_port'], ':')}")
            to = f"{inner}:{_ports(pf['internal_port'], '-')}"
            pre.append(f"-A PREROUTING {match} -j DNAT --to-destination {to}")
            out.append(f"-A OUTPUT {match} -j DNAT --to-destination {to}")
        for fip in router.get("floating_ips") or []:
            floating, fixed = fip["floating_ip_address"], fip["fixed_ip_address"]
            if not (_v4(floating) and _v4(fixed)):
                continue
            pre.append(f"-A PREROUTING -d {floating}/32 -j DNAT --to-destination {fixed}")
            out.append(f"-A OUTPUT -d {floating}/32 -j DNAT --to-destination {fixed}")
            post.append(f"-A POSTROUTING -s {fixed}/32 -o {gateway_device} "
                        f"-j SNAT --to-source {floating}")
        gateway = router.get("gateway") or {}
        source = next((f["ip_address"] for f in gateway.get("fixed_ips", [])
                       if _v4(f["ip_address"])), None)
        if router.get("enable_snat") and source:
            cidrs = sorted({f["cidr"] for iface in router.get("interfaces") or []
                            for f in iface["fixed_ips"] if f.get("ip_version") == 4})
            for cidr in cidrs:
                post.append(f"-A POSTROUTING -s {cidr} -o {gateway_device} "
                            f"-j SNAT --to-source {source}")
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]",
             ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", *pre, *out, *post, "COMMIT"]
    return "\n".join(lines) + "\n"


async def apply(namespace: str, text: str) -> None:
    """Replace the namespace's nat table with `text` in one step."""
    await netns.run(["iptables-restore"], namespace=namespace, input=text)


async def rules(namespace: str) -> str:
    return (await netns.run(["iptables-save", "-t", "nat"], namespace=namespace)).stdout

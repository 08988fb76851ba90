"""Security groups as iptables/ip6tables rules on bridged traffic (findings §4a: `-m physdev`
with bridge-nf-call-iptables=1 filters bridged frames statefully on this kernel).

Layout, the same in the IPv4 and the IPv6 filter table of the node namespace:

  FORWARD -> nimbus-FORWARD (first rule)
  nimbus-FORWARD:  per secured port, `--physdev-out tap -j nimbus-i<port>` (traffic to it)
                   and `--physdev-in tap -j nimbus-o<port>` (traffic from it); then per bridge
                   of ours `-o <bridge> -j ACCEPT` (whatever the port chains let through)
  nimbus-i<port>:  ingress rules; an allowed packet RETURNs, the chain ends in DROP
  nimbus-o<port>:  DHCP client out, anti-spoofing (nimbus-s<port>), egress rules, DROP
  nimbus-s<port>:  RETURN for each (MAC, source address) the port may use, else DROP

Every chain is rewritten at once with `iptables-restore --noflush` (one nftables
transaction), so traffic never sees half a port's rules. Chains of ports that went away are
emptied in that transaction and deleted right after. Ports with port security off and
ports owned by "network:*" get no chains: the bridge ACCEPT lets their traffic through.

ARP is not filtered (it does not go through iptables); conntrack zones per network are not
used, so two networks with overlapping addresses on one node share connection tracking.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from nimbus.common.netns import run

PREFIX = "nimbus-"
TOP = PREFIX + "FORWARD"
_CHAIN = re.compile(r"^:(nimbus-\S+)", re.M)

# Neutron's protocol names (the API accepts them) -> IP protocol numbers.
PROTOCOLS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
    "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}
# Protocols iptables knows a port (or type) match for, by the name it wants.
_WITH_PORTS = {6: "tcp", 17: "udp", 132: "sctp", 136: "udplite"}


def secured(port: dict[str, Any]) -> bool:
    """Whether the port gets security group rules at all."""
    owner = port.get("device_owner") or ""
    return bool(port.get("port_security_enabled", True)) and not owner.startswith("network:")


def chain(kind: str, port_id: str) -> str:
    return f"{PREFIX}{kind}{port_id[:11]}"


def _protocol(value: Any, version: int) -> int | None:
    if value in (None, "", "any"):
        return None
    text = str(value).lower()
    number = int(text) if text.isdigit() else PROTOCOLS.get(text)
    if number is None:
        raise ValueError(f"unknown protocol {value!r}")
    if version == 6 and number == 1:
        number = 58  # "icmp" in an IPv6 rule means ICMPv6, as upstream reads it
    return number


def _ports_match(proto: int, version: int, rule: dict[str, Any]) -> list[str]:
    """`-p ...` and the port/type match of a rule."""
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if proto in _WITH_PORTS:
        name = _WITH_PORTS[proto]
        args = ["-p", name]
        if low is not None:
            span = str(low) if high in (None, low) else f"{low}:{high}"
            args += ["-m", name, "--dport", span]
        return args
    if proto in (1, 58) and (version == 4) == (proto == 1):
        name, opt = ("icmp", "--icmp-type") if proto == 1 else ("ipv6-icmp", "--icmpv6-type")
        args = ["-p", name]
        if low is not None:
            kind = str(low) if high is None else f"{low}/{high}"
            args += ["-m", "icmp" if proto == 1 else "icmp6", opt, kind]
        return args
    return ["-p", str(proto)]


def _of_version(addresses: Iterable[str], version: int) -> list[str]:
    out = []
    for address in addresses:
        try:
            net = ipaddress.ip_network(address, strict=False)
        except ValueError:
            continue
        if net.version == version:
            out.append(str(net))
    return out


def rule_lines(rule: dict[str, Any], version: int) -> list[list[str]]:
    """The iptables rules (argument lists after `-A <chain>`) for one security group rule;
    none when the rule is for the other IP version or names no address of this version."""
    if (rule.get("ethertype") or "IPv4") != f"IPv{version}":
        return []
    proto = _protocol(rule.get("protocol"), version)
    match = _ports_match(proto, version, rule) if proto is not None else []
    side = "-s" if rule.get("direction") == "ingress" else "-d"
    if rule.get("remote_ip_prefix"):
        remotes: list[str | None] = list(_of_version([rule["remote_ip_prefix"]], version))
    elif rule.get("remote_ips") is not None:
        remotes = list(_of_version(rule["remote_ips"], version))
    else:
        remotes = [None]
    return [[*([side, r] if r else []), *match, "-j", "RETURN"] for r in remotes]


def _eui64(mac: str) -> str:
    parts = [int(b, 16) for b in mac.split(":")]
    parts[0] ^= 0x02
    raw = parts[:3] + [0xFF, 0xFE] + parts[3:]
    groups = [f"{raw[i] << 8 | raw[i + 1]:x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups) + "/128"


def _sources(port: dict[str, Any], version: int) -> list[tuple[str, str]]:
    """(MAC, source prefix) pairs the port may send from."""
    mac = port["mac_address"]
    pairs = [(mac, ip["ip_address"]) for ip in port.get("fixed_ips", [])]
    if version == 6:
        pairs.append((mac, _eui64(mac)))
    for pair in port.get("allowed_address_pairs") or []:
        pairs.append((pair.get("mac_address") or mac, pair["ip_address"]))
    out = []
    for pmac, address in pairs:
        for net in _of_version([address], version):
            out.append((pmac.lower(), net))
    return out


def port_chains(port: dict[str, Any], version: int) -> dict[str, list[list[str]]]:
    """Chain name -> its rules for one secured port."""
    pid = port["port_id"]
    rules = port.get("security_group_rules") or []
    stateful = all(r.get("stateful", True) for r in rules)
    inc, out, spoof = chain("i", pid), chain("o", pid), chain("s", pid)
    ct = (["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"],
          ["-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"])
    if version == 4:
        dhcp_in = [["-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68", "-j", "RETURN"]]
        dhcp_out = [["-s", "0.0.0.0/32", "-d", "255.255.255.255/32", "-p", "udp", "-m", "udp",
                     "--sport", "68", "--dport", "67", "-j", "RETURN"]]
        not_server = [["-p", "udp", "-m", "udp", "--sport", "68", "--dport", "67", "-j", "RETURN"],
                      ["-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68", "-j", "DROP"]]
        nd_in: list[list[str]] = []
        nd_out: list[list[str]] = []
    else:
        dhcp_in = [["-p", "udp", "-m", "udp", "--sport", "547", "--dport", "546",
                    "-j", "RETURN"]]
        # Duplicate address detection and MLD go out from "::" before any address is set.
        dhcp_out = [["-s", "::/128", "-d", "ff02::/16", "-p", "ipv6-icmp", "-m", "icmp6",
                     "--icmpv6-type", str(t), "-j", "RETURN"] for t in (131, 135, 143)]
        not_server = [["-p", "udp", "-m", "udp", "--sport", "546", "--dport", "547",
                       "-j", "RETURN"],
                      ["-p", "udp", "-m", "udp", "--sport", "547", "--dport", "546",
                       "-j", "DROP"],
                      ["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "134", "-j", "DROP"]]
        # Router/neighbour discovery and MLD: IPv6 does not work without them.
        nd_in = [["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", str(t), "-j", "RETURN"]
                 for t in (130, 131, 132, 134, 135, 136)]
        nd_out = [["-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", str(t), "-j", "RETURN"]
                  for t in (130, 131, 132, 133, 135, 136)]
    ingress: list[list[str]] = [*nd_in, *dhcp_in]
    # DHCP discovery leaves from 0.0.0.0 (or "::"), before the anti-spoofing check; then the
    # client side of DHCP always, the server side never.
    egress: list[list[str]] = [*dhcp_out, ["-j", spoof], *nd_out, *not_server]
    if stateful:
        ingress = [ct[0], *ingress, ct[1]]
        egress += [ct[0], ct[1]]
    for rule in rules:
        (ingress if rule.get("direction") == "ingress" else egress).extend(
            rule_lines(rule, version))
    ingress.append(["-j", "DROP"])
    egress.append(["-j", "DROP"])
    anti_spoof = [["-s", net, "-m", "mac", "--mac-source", mac, "-j", "RETURN"]
                  for mac, net in _sources(port, version)]
    anti_spoof.append(["-j", "DROP"])
    return {inc: ingress, out: egress, spoof: anti_spoof}


def ruleset(ports: Iterable[dict[str, Any]], bridges: Iterable[str],
            version: int) -> dict[str, list[list[str]]]:
    """Every chain of ours (nimbus-FORWARD first) with its rules."""
    top: list[list[str]] = []
    chains: dict[str, list[list[str]]] = {TOP: top}
    for port in sorted(ports, key=lambda p: p["port_id"]):
        dev = port["device"]
        top.append(["-m", "physdev", "--physdev-out", dev, "--physdev-is-bridged",
                    "-j", chain("i", port["port_id"])])
        top.append(["-m", "physdev", "--physdev-in", dev, "--physdev-is-bridged",
                    "-j", chain("o", port["port_id"])])
        chains.update(port_chains(port, version))
    for bridge in sorted(set(bridges)):
        top.append(["-o", bridge, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"])
    return chains


def _tool(version: int, what: str) -> str:
    return ("iptables" if version == 4 else "ip6tables") + what


async def _state(namespace: str | None, version: int) -> tuple[list[str], bool]:
    """Our chains in the table, and whether FORWARD jumps to ours."""
    out = (await run([_tool(version, "-save"), "-t", "filter"], namespace=namespace)).stdout
    return _CHAIN.findall(out), f"-A FORWARD -j {TOP}" in out.splitlines()


async def existing_chains(namespace: str | None, version: int) -> list[str]:
    return (await _state(namespace, version))[0]


def _render(chains: dict[str, list[list[str]]], stale: Iterable[str], jump: bool) -> str:
    lines = ["*filter"]
    lines += [f":{name} - [0:0]" for name in [*chains, *stale]]
    if jump:
        lines.append(f"-I FORWARD 1 -j {TOP}")
    for name, rules in chains.items():
        lines += [" ".join(["-A", name, *rule]) for rule in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


async def apply(namespace: str | None, ports: Iterable[dict[str, Any]],
                bridges: Iterable[str]) -> None:
    """Make our chains exactly the rules of these (secured, wired) ports, in both tables."""
    ports, bridges = list(ports), list(bridges)
    await asyncio.gather(*(_apply(namespace, ports, bridges, v) for v in (4, 6)))


async def _apply(namespace: str | None, ports: list[dict[str, Any]], bridges: list[str],
                 version: int) -> None:
    chains = ruleset(ports, bridges, version)
    have, jumps = await _state(namespace, version)
    stale = [c for c in have if c not in chains]
    await run([_tool(version, "-restore"), "-w", "--noflush"], namespace=namespace,
              input=_render(chains, stale, not jumps))
    if stale:
        await run([_tool(version, "-restore"), "-w", "--noflush"], namespace=namespace,
                  input="*filter\n" + "".join(f"-X {c}\n" for c in stale) + "COMMIT\n")


async def purge(namespace: str | None) -> None:
    """Remove the jump and every chain of ours from both tables."""
    for version in (4, 6):
        names, jumps = await _state(namespace, version)
        if jumps:
            await run([_tool(version, ""), "-w", "-D", "FORWARD", "-j", TOP],
                      namespace=namespace)
        if names:
            text = "*filter\n" + "".join(f":{n} - [0:0]\n" for n in names) + "COMMIT\n"
            await run([_tool(version, "-restore"), "-w", "--noflush"], namespace=namespace,
                      input=text)
            await run([_tool(version, "-restore"), "-w", "--noflush"], namespace=namespace,
                      input="*filter\n" + "".join(f"-X {n}\n" for n in names) + "COMMIT\n")

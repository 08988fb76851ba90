"""dnsmasq for one network: its files (hosts, options, leases, pid, log), its command line,
and the process, which runs as a daemon inside the network's qdhcp namespace and outlives the
agent that started it (a restarted agent finds it again through its pid file).

What a network's payload (see nimbus.network.dhcp_ports.network_payload) becomes:
- one static `--dhcp-range` per DHCP-enabled subnet, tagged `subnet-<id>`;
- a hosts-file line per address, `mac,hostname,ip,set:port-<id>`;
- per subnet: router (or none), DNS servers, domain, MTU and classless static routes
  (host routes, the metadata address through the DHCP port, default through the gateway);
- per port: its extra_dhcp_opts.
A change of hosts or options is a SIGHUP; a change of the command line (subnets) a restart."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nimbus.common import netns

LOG = logging.getLogger(__name__)

METADATA_IP = "169.254.169.254"
LEASE_SECONDS = 86400


def _subnet_tag(subnet_id: str) -> str:
    return "subnet-" + subnet_id


def _port_tag(port_id: str) -> str:
    return "port-" + port_id


def ranges(subnets: Sequence[dict[str, Any]]) -> tuple[list[str], bool]:
    """The --dhcp-range values, and whether dnsmasq must send router advertisements."""
    out: list[str] = []
    ra = False
    for sub in subnets:
        net = ipaddress.ip_network(sub["cidr"], strict=False)
        tag = "set:" + _subnet_tag(sub["id"])
        if net.version == 4:
            out.append(f"{tag},{net.network_address},static,{net.netmask},{LEASE_SECONDS}s")
            continue
        address_mode, ra_mode = sub.get("ipv6_address_mode"), sub.get("ipv6_ra_mode")
        if address_mode in ("dhcpv6-stateful", "dhcpv6-stateless"):
            out.append(f"{tag},{net.network_address},static,{net.prefixlen},{LEASE_SECONDS}s")
            ra = ra or not ra_mode  # no router of ours announces the prefix: we do
        elif address_mode == "slaac" and not ra_mode:
            out.append(f"{tag},{net.network_address},slaac,{net.prefixlen},{LEASE_SECONDS}s")
            ra = True
    return out, ra


def hosts_file(payload: dict[str, Any]) -> str:
    served = {s["id"]: s for s in payload["subnets"]}
    lines: list[str] = []
    for entry in sorted(payload["entries"], key=lambda e: (e["port_id"], e["ip_address"])):
        sub = served.get(entry["subnet_id"])
        if sub is None:
            continue
        ip = entry["ip_address"]
        if ipaddress.ip_address(ip).version == 6:
            if sub.get("ipv6_address_mode") != "dhcpv6-stateful":
                continue
            ip = f"[{ip}]"
        # A tag only for ports with options of their own: dnsmasq 2.90 has been seen to
        # crash on SIGHUP (a bad free) with a tag on every line.
        tag = f",set:{_port_tag(entry['port_id'])}" if entry.get("extra_dhcp_opts") else ""
        lines.append(f"{entry['mac_address']},{entry['hostname']},{ip}{tag}")
    return "".join(line + "\n" for line in lines)


def _routes(sub: dict[str, Any], dhcp_ip: str | None, metadata: bool) -> list[str]:
    parts: list[str] = []
    for route in sub.get("host_routes") or []:
        parts += [route["destination"], route["nexthop"]]
    if metadata and dhcp_ip:
        parts += [f"{METADATA_IP}/32", dhcp_ip]
    if sub.get("gateway_ip"):
        parts += ["0.0.0.0/0", sub["gateway_ip"]]
    return parts


def opts_file(payload: dict[str, Any], dhcp_ips: dict[str, str], *, metadata: bool) -> str:
    """dhcp_ips: subnet id -> the DHCP port's address on it."""
    lines: list[str] = []
    domain = (payload.get("domain") or "").rstrip(".")
    mtu = payload.get("mtu")
    for sub in sorted(payload["subnets"], key=lambda s: s["id"]):
        tag = "tag:" + _subnet_tag(sub["id"])
        dns = [d for d in sub.get("dns_nameservers") or []]
        if sub["ip_version"] == 4:
            gateway = sub.get("gateway_ip")
            lines.append(f"{tag},option:router" + (f",{gateway}" if gateway else ""))
            if dns:
                lines.append(f"{tag},option:dns-server,{','.join(dns)}")
            if domain:
                lines.append(f"{tag},option:domain-name,{domain}")
            if mtu:
                lines.append(f"{tag},option:mtu,{mtu}")
            routes = _routes(sub, dhcp_ips.get(sub["id"]), metadata)
            if routes:
                lines.append(f"{tag},option:classless-static-route,{','.join(routes)}")
        else:
            if dns:
                lines.append(f"{tag},option6:dns-server,{','.join(f'[{d}]' for d in dns)}")
            if domain:
                lines.append(f"{tag},option6:domain-search,{domain}")
    seen: set[tuple[str, str]] = set()
    for entry in sorted(payload["entries"], key=lambda e: e["port_id"]):
        for opt in entry.get("extra_dhcp_opts") or []:
            name, value = str(opt.get("opt_name", "")), opt.get("opt_value")
            key = (entry["port_id"], name)
            if not name or key in seen:
                continue
            seen.add(key)
            v6 = str(opt.get("ip_version", 4)) == "6"
            label = name if name.isdigit() else ("option6:" if v6 else "option:") + name
            lines.append(f"tag:{_port_tag(entry['port_id'])},{label}"
                         + (f",{value}" if value not in (None, "") else ""))
    return "".join(line + "\n" for line in lines)


class Dnsmasq:
    """The dnsmasq of one network: files in `directory`, process in `namespace`."""

    def __init__(self, directory: Path, namespace: str, interface: str) -> None:
        self.directory = directory
        self.namespace = namespace
        self.interface = interface
        self.pid_file = directory / "pid"
        self.hosts = directory / "host"
        self.opts = directory / "opts"
        self.leases = directory / "leases"
        self.log = directory / "dnsmasq.log"

    def arguments(self, subnets: Sequence[dict[str, Any]]) -> list[str]:
        dhcp_ranges, ra = ranges(subnets)
        args = ["--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--user=root",
                "--group=root", f"--interface={self.interface}", "--bind-interfaces",
                "--except-interface=lo", f"--pid-file={self.pid_file}",
                f"--dhcp-hostsfile={self.hosts}", f"--dhcp-optsfile={self.opts}",
                f"--dhcp-leasefile={self.leases}", "--dhcp-authoritative",
                f"--log-facility={self.log}", f"--dhcp-lease-max={2 ** 16}"]
        args += [f"--dhcp-range={r}" for r in dhcp_ranges]
        if ra:
            args.append("--enable-ra")
        return args

    # -- the process ---------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of this network's running dnsmasq, if one runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        argv = _cmdline(pid)
        if not argv or os.path.basename(argv[0]) != "dnsmasq" or \
                f"--pid-file={self.pid_file}" not in argv:
            return None
        return pid

    def running_arguments(self) -> list[str] | None:
        pid = self.pid()
        argv = _cmdline(pid) if pid else None
        return argv[1:] if argv else None

    async def apply(self, subnets: Sequence[dict[str, Any]], hosts: str, opts: str) -> str:
        """Make the files and process match; returns started, restarted, reloaded or unchanged.
        Raises CommandError (with dnsmasq's message) when it will not start."""
        self.directory.mkdir(parents=True, exist_ok=True)
        gone = host_entries(_read(self.hosts)) - host_entries(hosts)
        changed = _write(self.hosts, hosts) | _write(self.opts, opts)
        args = self.arguments(subnets)
        running = self.running_arguments()
        if running == args:
            if not changed:
                return "unchanged"
            pid = self.pid()
            logged = _size(self.log)
            self.signal(signal.SIGHUP)
            # It re-reads its files at once; one that died doing so is started again.
            if pid is not None:
                await self._reloaded(pid, logged)
            if pid is not None and _alive(pid):
                if await self._release(gone):
                    return "reloaded"
                LOG.info("dnsmasq %s: no dhcp_release; restarting to drop leases", pid)
            else:
                LOG.warning("dnsmasq %s died on reload: %s", pid, _tail(self.log, 2))
                running = None
        outcome = "started"
        if running is not None:
            await self.stop()
            outcome = "restarted"
        if gone:
            _drop_leases(self.leases, {mac for mac, _ in gone})
        await netns.run(["dnsmasq", *args], namespace=self.namespace, time_limit=20)
        deadline = time.monotonic() + 5
        while self.pid() is None:
            if time.monotonic() > deadline:
                raise netns.CommandError(["dnsmasq", *args], 1,
                                         "dnsmasq exited right after starting: "
                                         + _tail(self.log))
            await asyncio.sleep(0.02)
        return outcome

    async def _reloaded(self, pid: int, logged: int, time_limit: float = 1.0) -> None:
        """Until dnsmasq has logged re-reading its options file (the last it reads on
        SIGHUP) after offset `logged` of its log, or has died, or `time_limit` passed."""
        line = f"read {self.opts}".encode()
        deadline = time.monotonic() + time_limit
        while _alive(pid) and time.monotonic() < deadline:
            if line in await asyncio.to_thread(_log_since, self.log, logged):
                return
            await asyncio.sleep(0.005)

    async def _release(self, gone: set[tuple[str, str]]) -> bool:
        """Forget the leases of ports that left (dnsmasq keeps a lease after its host entry
        is gone, and refuses the address to the next port IPAM gives it to). False when
        dhcp_release (dnsmasq-utils) is missing: then only a restart forgets them."""
        v4 = [(mac, ip) for mac, ip in gone if ":" not in ip]
        if not v4:
            return True
        if shutil.which("dhcp_release") is None:
            return False
        for mac, ip in v4:
            await netns.run(["dhcp_release", self.interface, ip, mac],
                            namespace=self.namespace, check=False)
        return True

    def signal(self, sig: int) -> None:
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            await asyncio.sleep(0.02)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def host_entries(text: str) -> set[tuple[str, str]]:
    """(MAC, address) of each line of a hosts file."""
    found = set()
    for line in text.splitlines():
        fields = [f for f in line.split(",") if not f.startswith("set:")]
        if len(fields) >= 3:
            found.add((fields[0].lower(), fields[2].strip("[]")))
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _log_since(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read()
    except FileNotFoundError:
        return b""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _drop_leases(path: Path, macs: set[str]) -> None:
    """Remove the leases of these MACs from a stopped dnsmasq's lease file."""
    kept = [line for line in _read(path).splitlines(keepends=True)
            if len(line.split()) < 2 or line.split()[1].lower() not in macs]
    if path.exists():
        path.write_text("".join(kept))


def _write(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def alive_pids(directory: Path) -> list[int]:
    """Running dnsmasq processes whose pid files are under `directory` (any network)."""
    out = []
    for pid_file in directory.glob("*/pid"):
        proc = Dnsmasq(pid_file.parent, "", "")
        pid = proc.pid()
        if pid:
            out.append(pid)
    return out

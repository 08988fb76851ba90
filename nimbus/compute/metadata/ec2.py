"""The EC2 format, as Nova serves it: /<version>/meta-data/… (a tree whose directories list
their names) and /<version>/user-data. Each dated version adds to the one before; "latest"
is the newest.

    meta-data/  ami-id, ami-launch-index, ami-manifest-path, block-device-mapping/ (ami, root,
                ephemeralN, swap, ebsN), hostname, instance-action, instance-id (i-%08x of the
                instance's integer id), instance-type, kernel-id and ramdisk-id (when set),
                local-hostname, local-ipv4, placement/availability-zone, public-hostname,
                public-ipv4 (its floating IP, "" without one), public-keys/ (0=<key name>,
                0/openssh-key), reservation-id, security-groups
"""

from __future__ import annotations

import string
from typing import Any

from nimbus.compute.metadata import answer
from nimbus.compute.metadata.answer import Answer
from nimbus.compute.metadata.instance import InstanceData

VERSIONS = ["1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
            "2008-02-01", "2008-09-01", "2009-04-04"]
LATEST = "latest"


def since(version: str, first: str) -> bool:
    return VERSIONS.index(version) >= VERSIONS.index(first)


def ec2_image_id(image_ref: str, prefix: str = "ami") -> str:
    """An EC2-style id for an image: the first 32 bits of its uuid."""
    digits = "".join(c for c in image_ref.lower() if c in string.hexdigits)[:8]
    return f"{prefix}-{int(digits or '0', 16):08x}"


def _strip_dev(name: str) -> str:
    return name[len("/dev/"):] if name.startswith("/dev/") else name


def block_device_mapping(data: InstanceData) -> dict[str, str]:
    """ami and root (the root disk), ephemeralN and swap (local disks, from the block device
    mapping or else the flavor), ebsN (volumes other than the root one, by device name)."""
    root = data.root_device_name
    mappings = {"ami": _strip_dev(root), "root": root}
    prefix = root.rstrip(string.ascii_lowercase) or "/dev/vd"
    used = {root} | {str(b["device_name"]) for b in data.block_device_mapping
                     if b.get("device_name")}
    letters = iter(string.ascii_lowercase[1:])

    def next_device(bdm: dict[str, Any] | None = None) -> str:
        if bdm is not None and bdm.get("device_name"):
            return str(bdm["device_name"])
        for letter in letters:
            name = f"{prefix}{letter}"
            if name not in used:
                used.add(name)
                return name
        return ""

    ephemerals, swap, volumes = 0, False, []
    for bdm in data.block_device_mapping:
        if bdm.get("no_device") or str(bdm.get("boot_index")) == "0":
            continue
        if bdm.get("destination_type") == "volume":
            volumes.append(next_device(bdm))
        elif bdm.get("source_type") == "blank":
            if bdm.get("guest_format") == "swap":
                mappings["swap"], swap = next_device(bdm), True
            else:
                mappings[f"ephemeral{ephemerals}"] = next_device(bdm)
                ephemerals += 1
    if not ephemerals and int(data.flavor.get("ephemeral_gb") or 0) > 0:
        mappings["ephemeral0"] = next_device()
    if not swap and int(data.flavor.get("swap") or 0) > 0:
        mappings["swap"] = next_device()
    for num, device in enumerate(sorted(v for v in volumes if v)):
        mappings[f"ebs{num}"] = device
    return mappings


def meta_data(version: str, data: InstanceData, floating_ips: list[str]) -> dict[str, Any]:
    v4 = data.fixed_ips(4)
    local_ip = data.remote_address if data.remote_address in v4 else (
        v4[0] if v4 else data.remote_address)
    hostname = data.fqdn
    meta: dict[str, Any] = {
        "ami-id": ec2_image_id(data.image_ref), "ami-launch-index": data.launch_index,
        "ami-manifest-path": "FIXME", "instance-id": data.ec2_id, "hostname": hostname,
        "local-ipv4": local_ip, "reservation-id": data.reservation_id,
        "security-groups": list(data.security_groups),
    }
    if data.keys:
        key = data.keys[0]
        meta["public-keys"] = {"0": {"_name": f"0={key['name']}", "openssh-key": key["data"]}}
    if since(version, "2007-01-19"):
        meta["local-hostname"] = hostname
        meta["public-hostname"] = hostname
        meta["public-ipv4"] = floating_ips[0] if floating_ips else ""
    if since(version, "2007-08-29"):
        meta["instance-type"] = data.flavor.get("name") or ""
    if since(version, "2007-12-15"):
        meta["block-device-mapping"] = block_device_mapping(data)
        if data.kernel_id:
            meta["kernel-id"] = ec2_image_id(data.kernel_id, "aki")
        if data.ramdisk_id:
            meta["ramdisk-id"] = ec2_image_id(data.ramdisk_id, "ari")
    if since(version, "2008-02-01"):
        meta["placement"] = {"availability-zone": data.availability_zone}
    if since(version, "2008-09-01"):
        meta["instance-action"] = "none"
    return meta


async def route(tokens: list[str], data: InstanceData) -> Answer:
    """tokens: the path split on '/' (empty for '/')."""
    if not tokens:
        return answer.listing([*VERSIONS, LATEST])
    version = VERSIONS[-1] if tokens[0] == LATEST else tokens[0]
    if version not in VERSIONS:
        return answer.not_found()
    floating: list[str] = []
    if len(tokens) > 1 and tokens[1] == "meta-data" and data.facts is not None:
        floating = await data.facts.floating_ips()
    node: Any = {"meta-data": meta_data(version, data, floating)}
    if data.user_data is not None:
        node["user-data"] = data.user_data
    for token in tokens[1:]:
        if not isinstance(node, dict) or token not in node or token == "_name":
            return answer.not_found()
        node = node[token]
    if isinstance(node, bytes):
        return answer.text(node)
    return answer.text(answer.render(node))

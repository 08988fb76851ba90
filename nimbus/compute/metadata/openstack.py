"""The OpenStack format, under /openstack: dated versions (each adds to the one before, as in
Nova) and "latest", which has everything.

    /openstack                         the versions, one a line, then "latest"
    /openstack/<v>                     what the version has
    /openstack/<v>/meta_data.json      uuid, name, hostname, launch_index, availability_zone,
                                       meta, public_keys, keys, random_seed (2013-04-04),
                                       project_id (2015-10-15), devices (2016-06-30),
                                       dedicated_cpus (latest)
    /openstack/<v>/user_data           as given at boot; 404 when there is none
    /openstack/<v>/password            the password the guest posted, "" if none (2013-04-04)
    /openstack/<v>/vendor_data.json    {} (2013-10-17)
    /openstack/<v>/network_data.json   network_data.py (2015-10-15)
    /openstack/<v>/vendor_data2.json   {} (2016-10-06)
"""

from __future__ import annotations

import base64
import os
from typing import Any

from nimbus.compute.metadata import answer, network_data
from nimbus.compute.metadata.answer import Answer
from nimbus.compute.metadata.instance import InstanceData

FOLSOM = "2012-08-10"
GRIZZLY = "2013-04-04"
HAVANA = "2013-10-17"
LIBERTY = "2015-10-15"
NEWTON_ONE = "2016-06-30"
NEWTON_TWO = "2016-10-06"
OCATA = "2017-02-22"
ROCKY = "2018-08-27"
VERSIONS = [FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY]
LATEST = "latest"

META_DATA = "meta_data.json"
USER_DATA = "user_data"
PASSWORD = "password"
VENDOR_DATA = "vendor_data.json"
NETWORK_DATA = "network_data.json"
VENDOR_DATA2 = "vendor_data2.json"


def _rank(version: str) -> int:
    return len(VERSIONS) if version == LATEST else VERSIONS.index(version)


def since(version: str, first: str) -> bool:
    """Whether `version` has what appeared in `first` ("latest" has everything)."""
    return _rank(version) >= _rank(first)


def items(version: str, data: InstanceData) -> list[str]:
    """What /openstack/<version> lists, in Nova's order."""
    names = [META_DATA]
    if data.user_data is not None:
        names.append(USER_DATA)
    if since(version, GRIZZLY):
        names.append(PASSWORD)
    if since(version, HAVANA):
        names.append(VENDOR_DATA)
    if since(version, LIBERTY):
        names.append(NETWORK_DATA)
    if since(version, NEWTON_TWO):
        names.append(VENDOR_DATA2)
    return names


def devices(data: InstanceData) -> list[dict[str, Any]]:
    """Tagged NICs and disks, so that a guest can tell its devices apart by role."""
    found: list[dict[str, Any]] = []
    for vif in data.network_info:
        if not vif.get("tag"):
            continue
        nic: dict[str, Any] = {"type": "nic", "bus": "pci", "mac": vif.get("mac_address"),
                               "tags": [vif["tag"]]}
        if vif.get("pci_address"):
            nic["address"] = vif["pci_address"]
        found.append(nic)
    for bdm in data.block_device_mapping:
        if not bdm.get("tag"):
            continue
        disk: dict[str, Any] = {"type": "disk", "bus": bdm.get("disk_bus") or "virtio",
                                "serial": bdm.get("volume_id") or bdm.get("uuid") or "",
                                "path": bdm.get("device_name") or "", "tags": [bdm["tag"]]}
        found.append(disk)
    return found


def meta_data(version: str, data: InstanceData) -> dict[str, Any]:
    doc: dict[str, Any] = {"uuid": data.uuid}
    if data.metadata:
        doc["meta"] = dict(data.metadata)
    if data.keys:
        first = data.keys[0]
        doc["public_keys"] = {first["name"]: first["data"]}
        doc["keys"] = [dict(k) for k in data.keys]
    doc["hostname"] = data.fqdn
    doc["name"] = data.name
    doc["launch_index"] = data.launch_index
    doc["availability_zone"] = data.availability_zone
    if since(version, GRIZZLY):
        doc["random_seed"] = base64.b64encode(os.urandom(512)).decode("ascii")
    if since(version, LIBERTY):
        doc["project_id"] = data.project_id
    if since(version, NEWTON_ONE):
        doc["devices"] = devices(data)
    if since(version, LATEST):
        doc["dedicated_cpus"] = []  # no guest has pinned CPUs here
    return doc


async def route(tokens: list[str], data: InstanceData) -> Answer:
    """tokens: the path below /openstack, split on '/'."""
    if not tokens:
        return answer.listing([*VERSIONS, LATEST])
    version = tokens[0]
    if version != LATEST and version not in VERSIONS:
        return answer.not_found()
    if len(tokens) == 1:
        return answer.listing(items(version, data))
    if len(tokens) > 2 or tokens[1] not in items(version, data):
        return answer.not_found()
    name = tokens[1]
    if name == META_DATA:
        return answer.as_json(meta_data(version, data))
    if name == USER_DATA:
        assert data.user_data is not None
        return answer.text(data.user_data)
    if name == PASSWORD:
        return answer.text(data.password)
    if name in (VENDOR_DATA, VENDOR_DATA2):
        return answer.as_json({})
    assert data.facts is not None
    return answer.as_json(network_data.build(data.network_info, await data.facts.subnets(),
                                             await data.facts.networks()))

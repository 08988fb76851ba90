"""One metadata request: the instance (already identified by the proxy), a path, the address
the guest asked from; the answer, or 404 for an unknown instance or path."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from nimbus.compute.metadata import answer, ec2, openstack
from nimbus.compute.metadata.answer import Answer
from nimbus.compute.metadata.instance import load

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService


def split_path(path: str) -> list[str]:
    """'/openstack/latest/../latest/meta_data.json?x' -> ['openstack', 'latest',
    'meta_data.json']; a trailing slash changes nothing."""
    clean = posixpath.normpath("/" + unquote(urlsplit(path).path))
    return [part for part in clean.split("/") if part]


async def get(svc: ComputeService, instance_uuid: str, path: str,
              remote_address: str = "") -> Answer:
    data = await load(svc, instance_uuid, remote_address)
    if data is None:
        return answer.not_found()
    tokens = split_path(path)
    if tokens and tokens[0] == "openstack":
        return await openstack.route(tokens[1:], data)
    return await ec2.route(tokens, data)

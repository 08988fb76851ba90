"""The bus endpoint (topic "compute-metadata", served by the processes that run the compute
API): the metadata proxies of the network side ask it for what a guest requested.

    get(instance_uuid: str, path: str, remote_address: str)
        -> {"status": int, "content_type": str, "body": str}
       (plus "body_base64": True when the body, binary user data, is base64-encoded)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nimbus.compute import rpc
from nimbus.compute.metadata import answer, handler

if TYPE_CHECKING:
    from nimbus.bus import Server
    from nimbus.compute.service import ComputeService

LOG = logging.getLogger(__name__)


class MetadataEndpoint:
    version = "1.0"

    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    async def get(self, context: dict[str, Any], instance_uuid: str, path: str,
                  remote_address: str = "") -> dict[str, Any]:
        try:
            found = await handler.get(self.svc, instance_uuid, path, remote_address)
        except Exception:
            LOG.exception("metadata of %s at %s failed", instance_uuid, path)
            found = answer.Answer(500, answer.TEXT, b"500 Internal Server Error\n\n"
                                  b"The metadata service could not answer.\n\n")
        return found.to_wire()


async def serve(svc: ComputeService) -> Server:
    return await svc.cloud.bus.serve(rpc.METADATA, MetadataEndpoint(svc))

"""What a new cloud gets: DevStack's flavors (plus m1.nano and m1.micro), and the conductor
and scheduler as services. The `nova` zone is every host not placed in another one."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from nimbus.compute import flavors, hosts

if TYPE_CHECKING:
    from nimbus.compute.service import ComputeService


async def run(svc: ComputeService) -> None:
    async with svc.db.transaction() as session:
        await flavors.bootstrap(session)
    async with svc.db.transaction() as session:
        me = socket.gethostname()
        for binary, topic in (("nova-conductor", "compute-conductor"),
                              ("nova-scheduler", "compute-scheduler")):
            await hosts.register_service(session, me, binary, topic)

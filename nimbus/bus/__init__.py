"""The message bus: RPC (call, cast, fanout) over versioned targets, and notifications.

    bus = create_bus("memory://")            # or "amqp://guest:guest@127.0.0.1:5672/nimbus"
    await bus.start()
    await bus.serve(Target("conductor", server="host1"), ConductorEndpoint())
    result = await bus.call(Target("conductor", version="1.2"), "build", context=ctx, x=1)

Two backends with the same behaviour: `memory` (in-process) and `rabbit` (RabbitMQ).
"""

from nimbus.bus.base import Bus, Server, Subscription
from nimbus.bus.errors import BusError, BusTimeout, NoSuchMethod, RemoteError, UnsupportedVersion
from nimbus.bus.factory import create_bus
from nimbus.bus.target import Target

__all__ = [
    "Bus",
    "BusError",
    "BusTimeout",
    "NoSuchMethod",
    "RemoteError",
    "Server",
    "Subscription",
    "Target",
    "UnsupportedVersion",
    "create_bus",
]

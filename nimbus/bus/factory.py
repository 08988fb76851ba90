"""Build a bus backend from a URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from nimbus.bus.base import Bus
from nimbus.bus.dispatch import DEFAULT_CONCURRENCY, DEFAULT_STOP_GRACE


def create_bus(
    url: str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop_grace: float = DEFAULT_STOP_GRACE,
) -> Bus:
    """Return an unstarted bus for `url`: "memory://" or "amqp[s]://user:pw@host:port/vhost".

    concurrency: handlers running at once per server or subscription.
    stop_grace: seconds stop() waits for running handlers before cancelling them.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from nimbus.bus.memory import MemoryBus

        return MemoryBus(concurrency=concurrency, stop_grace=stop_grace)
    if scheme in ("amqp", "amqps", "rabbit"):
        from nimbus.bus.rabbit import RabbitBus

        if scheme == "rabbit":
            url = "amqp" + url[len("rabbit") :]
        return RabbitBus(url, concurrency=concurrency, stop_grace=stop_grace)
    raise ValueError(f"unsupported bus URL {url!r}: use memory:// or amqp://")

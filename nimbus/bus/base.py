"""The interface every bus backend implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from nimbus.bus.target import Target


@runtime_checkable
class Server(Protocol):
    """A running endpoint registration, returned by Bus.serve()."""

    async def stop(self) -> None:
        """Stop receiving, let running handlers finish (bounded grace), then return."""
        ...


@runtime_checkable
class Subscription(Protocol):
    """A running notification subscription, returned by Bus.subscribe()."""

    async def stop(self) -> None:
        """Stop receiving, let running handlers finish (bounded grace), then return."""
        ...


@runtime_checkable
class Bus(Protocol):
    """RPC (call/cast/fanout) over versioned targets, plus notifications.

    Arguments, results, payloads and contexts travel as JSON. Keyword arguments of call, cast
    and fanout become the endpoint method's keyword arguments, so they cannot be named
    `target`, `method`, `context` or `timeout`.
    """

    async def start(self) -> None:
        """Connect; must be awaited before anything else."""
        ...

    async def stop(self) -> None:
        """Stop every server and subscription of this bus, fail pending calls, disconnect."""
        ...

    async def call(
        self,
        target: Target,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109
        **kwargs: Any,
    ) -> Any:
        """Invoke `method` on one server of `target` and return its result.

        Raises RemoteError (or its subclasses NoSuchMethod, UnsupportedVersion) if the remote
        side failed, BusTimeout if no reply arrived within `timeout` seconds.
        """
        ...

    async def cast(
        self,
        target: Target,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Send `method` to one server of `target` without waiting for it to run."""
        ...

    async def fanout(
        self,
        topic: str,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Send `method` to every server listening on `topic` (no version check)."""
        ...

    async def notify(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        publisher_id: str,
        priority: str = "INFO",
        context: dict[str, Any] | None = None,
    ) -> None:
        """Publish a notification to every matching subscriber (one per pool)."""
        ...

    async def serve(self, target: Target, endpoint: object) -> Server:
        """Start serving `endpoint` on `target`.

        The server takes its share of the topic's work queue, receives every fanout on the
        topic and, if target.server is set, everything addressed to that server. Public
        methods are invoked as ``await endpoint.method(context, **kwargs)``, each in its own
        task (bounded concurrency). An endpoint may declare ``version = "major.minor"``
        (default "1.0"); calls for another major or a higher minor are refused with
        UnsupportedVersion.
        """
        ...

    async def subscribe(
        self,
        event_pattern: str,
        handler: Callable[[dict[str, Any]], Awaitable[None]],
        *,
        pool: str | None = None,
    ) -> Subscription:
        """Receive notifications whose event_type matches the fnmatch-style pattern.

        handler gets {"event_type", "payload", "publisher_id", "priority", "timestamp",
        "message_id", "context"}. pool=None: this subscriber gets every matching
        notification; subscribers sharing a pool name (and pattern) share the work, each
        notification going to one of them.
        """
        ...

"""Backend-independent server side: endpoint dispatch and bounded concurrent handling."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nimbus.bus import codec
from nimbus.bus.errors import NoSuchMethod, UnsupportedVersion
from nimbus.bus.target import Target, parse_version, version_compatible

log = logging.getLogger("nimbus.bus")

DEFAULT_CONCURRENCY = 64
DEFAULT_STOP_GRACE = 10.0

NotificationHandler = Callable[[dict[str, Any]], Awaitable[None]]


class TaskPool:
    """At most `limit` handler tasks at once; slots are reserved, then filled with a task.

    Each task is independent of the delivering code (a broker channel closing never cancels
    it). `on_release` callbacks run whenever a slot frees up.
    """

    def __init__(self, limit: int = DEFAULT_CONCURRENCY) -> None:
        if limit < 1:
            raise ValueError("concurrency limit must be at least 1")
        self._limit = limit
        self._reserved = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_release: list[Callable[[], None]] = []

    @property
    def free(self) -> int:
        """Slots neither running nor reserved."""
        return self._limit - self._reserved

    def try_acquire(self) -> bool:
        """Reserve a slot if one is free right now."""
        if self._reserved < self._limit and not self._waiters:
            self._reserved += 1
            return True
        return False

    async def acquire(self) -> None:
        """Reserve a slot, waiting for one if all are taken."""
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed to us just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a reserved slot back (to the next waiter, if any)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._reserved -= 1
        for callback in list(self.on_release):
            callback()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run coro in its own task in an already reserved slot."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bus handler task failed", exc_info=task.exception())
        self.release()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` seconds for running tasks, then cancel what is left."""
        for waiter in self._waiters:
            waiter.cancel()
        if not self._tasks:
            return
        tasks = set(self._tasks)
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d bus handler(s) still running at stop", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)


class Dispatcher:
    """Calls `await endpoint.<method>(context, **args)` for decoded request bodies.

    The endpoint's optional `version` attribute ("major.minor", default "1.0") is checked
    against the version each call or cast asks for; fanouts carry no version.
    """

    def __init__(self, target: Target, endpoint: object) -> None:
        self.target = target
        self.endpoint = endpoint
        self.version = str(getattr(endpoint, "version", "1.0"))
        parse_version(self.version)

    def _lookup(self, method: Any) -> Callable[..., Any]:
        if isinstance(method, str) and method and not method.startswith("_"):
            func = getattr(self.endpoint, method, None)
            if callable(func) and not inspect.isclass(func):
                return func
        raise NoSuchMethod(
            f"endpoint {type(self.endpoint).__name__} on topic {self.target.topic!r} "
            f"has no method {method!r}",
            {"method": str(method), "topic": self.target.topic},
        )

    async def dispatch(self, request: dict[str, Any]) -> Any:
        """Run one decoded request; raise what the endpoint raises."""
        method = request.get("method")
        requested = request.get("version")
        if requested is not None and not version_compatible(self.version, str(requested)):
            raise UnsupportedVersion(
                f"endpoint on topic {self.target.topic!r} is at version {self.version}, "
                f"cannot serve version {requested} (method {method!r})",
                {"requested": str(requested), "offered": self.version, "method": str(method)},
            )
        func = self._lookup(method)
        context = request.get("context") or {}
        args = request.get("args") or {}
        result = func(context, **args)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def handle(self, body: bytes, *, reply: bool) -> bytes | None:
        """Decode, dispatch and (if a reply is wanted) encode the reply. Never raises Exception."""
        method: Any = "?"
        try:
            request = codec.loads(body)
            method = request.get("method")
            result = await self.dispatch(request)
            if not reply:
                return None
            return codec.pack_result(result)
        except Exception as exc:
            if reply:
                log.debug("bus call %s.%s raised %s", self.target.topic, method, exc, exc_info=True)
                return codec.pack_error(exc)
            log.error(
                "bus cast %s.%s raised %s: %s",
                self.target.topic,
                method,
                type(exc).__name__,
                exc,
                exc_info=True,
            )
            return None


async def run_notification_handler(handler: NotificationHandler, pattern: str, body: bytes) -> None:
    """Decode a notification and hand it to the handler if it matches; log handler errors."""
    try:
        notification = codec.loads(body)
        if not codec.event_matches(pattern, str(notification.get("event_type", ""))):
            return
        await handler(notification)
    except Exception:
        log.exception("bus notification handler for %r failed", pattern)

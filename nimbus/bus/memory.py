"""In-process bus backend for the all-in-one; same behaviour as the RabbitMQ backend.

It models the broker's queues so routing matches the rabbit backend exactly:
- one work queue per topic shared by every server of the topic and one queue per
  (topic, server); created by the first server, they outlive their servers (holding at most
  MAX_LENGTH messages, oldest dropped) so a restarted server picks up what was sent
  meanwhile; a call that expired while queued is skipped. Messages for a topic or server
  nobody ever served are dropped, so call() times out;
- one private fanout queue per server and one per plain subscriber, gone with it;
- one shared queue per (pool, pattern) that outlives its subscribers like RPC queues.
Each queue hands messages round-robin to consumers that have a free concurrency slot.
Bodies are JSON-encoded and decoded exactly as on the wire. Nothing is shared between two
MemoryBus instances.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from nimbus.bus import codec
from nimbus.bus.dispatch import (
    DEFAULT_CONCURRENCY,
    DEFAULT_STOP_GRACE,
    Dispatcher,
    NotificationHandler,
    TaskPool,
    run_notification_handler,
)
from nimbus.bus.errors import BusTimeout
from nimbus.bus.target import Target

log = logging.getLogger("nimbus.bus.memory")

MAX_LENGTH = 10_000


@dataclass(frozen=True)
class _Delivery:
    body: bytes
    reply_id: str | None = None
    expires_at: float | None = None


class _MemQueue:
    def __init__(self, name: str, *, auto_delete: bool, max_length: int | None = None) -> None:
        self.name = name
        self.auto_delete = auto_delete
        self.max_length = max_length
        self.buffer: deque[_Delivery] = deque()
        self.consumers: list[_MemConsumer] = []
        self._next = 0

    def put(self, delivery: _Delivery) -> None:
        self.buffer.append(delivery)
        if self.max_length is not None and len(self.buffer) > self.max_length:
            self.buffer.popleft()
            log.warning("bus queue %s is full; dropped its oldest message", self.name)
        self.dispatch()

    def dispatch(self) -> None:
        while self.buffer and self.consumers:
            consumer = self._next_ready()
            if consumer is None:
                return
            consumer.take(self.buffer.popleft())

    def _next_ready(self) -> _MemConsumer | None:
        count = len(self.consumers)
        for i in range(count):
            consumer = self.consumers[(self._next + i) % count]
            if consumer.pool.try_acquire():
                self._next = (self._next + i + 1) % count
                return consumer
        return None


class _MemConsumer:
    def __init__(
        self, pool: TaskPool, handle: Callable[[_Delivery], Coroutine[Any, Any, None]]
    ) -> None:
        self.pool = pool
        self.handle = handle

    def take(self, delivery: _Delivery) -> None:
        self.pool.spawn(self.handle(delivery))


class _Receiver:
    """Consumes one or more queues through one TaskPool (base of servers and subscriptions)."""

    def __init__(self, bus: MemoryBus, concurrency: int, grace: float) -> None:
        self._bus = bus
        self._pool = TaskPool(concurrency)
        self._grace = grace
        self._attached: list[tuple[_MemQueue, _MemConsumer]] = []
        self._stopped = False

    def _attach(self, queue: _MemQueue) -> None:
        consumer = _MemConsumer(self._pool, self._handle)
        queue.consumers.append(consumer)
        self._pool.on_release.append(queue.dispatch)
        self._attached.append((queue, consumer))
        queue.dispatch()

    async def _handle(self, delivery: _Delivery) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop receiving, let running handlers finish (bounded grace)."""
        if self._stopped:
            return
        self._stopped = True
        self._pool.on_release.clear()
        for queue, consumer in self._attached:
            queue.consumers.remove(consumer)
            if queue.auto_delete and not queue.consumers:
                self._bus._delete_queue(queue)
            else:
                queue.dispatch()
        self._attached.clear()
        self._bus._receivers.discard(self)
        await self._pool.drain(self._grace)


class MemoryServer(_Receiver):
    """An endpoint served on the in-memory bus."""

    def __init__(
        self, bus: MemoryBus, dispatcher: Dispatcher, concurrency: int, grace: float
    ) -> None:
        super().__init__(bus, concurrency, grace)
        self.target = dispatcher.target
        self._dispatcher = dispatcher

    async def _handle(self, delivery: _Delivery) -> None:
        loop = asyncio.get_running_loop()
        if delivery.expires_at is not None and loop.time() > delivery.expires_at:
            return  # the caller has given up already
        reply = await self._dispatcher.handle(delivery.body, reply=delivery.reply_id is not None)
        if delivery.reply_id is not None and reply is not None:
            self._bus._deliver_reply(delivery.reply_id, reply)


class MemorySubscription(_Receiver):
    """A notification subscription on the in-memory bus."""

    def __init__(
        self,
        bus: MemoryBus,
        pattern: str,
        handler: NotificationHandler,
        concurrency: int,
        grace: float,
    ) -> None:
        super().__init__(bus, concurrency, grace)
        self.pattern = pattern
        self._handler = handler

    async def _handle(self, delivery: _Delivery) -> None:
        await run_notification_handler(self._handler, self.pattern, delivery.body)


class MemoryBus:
    """The in-process bus ("memory://")."""

    def __init__(
        self, *, concurrency: int = DEFAULT_CONCURRENCY, stop_grace: float = DEFAULT_STOP_GRACE
    ) -> None:
        self._concurrency = concurrency
        self._grace = stop_grace
        self._rpc: dict[str, _MemQueue] = {}
        self._fanout: dict[str, set[_MemQueue]] = {}
        self._notify: dict[str, tuple[str, _MemQueue]] = {}
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._receivers: set[_Receiver] = set()
        self._started = False

    def __repr__(self) -> str:
        return f"<MemoryBus started={self._started} receivers={len(self._receivers)}>"

    async def start(self) -> None:
        """Nothing to connect to; marks the bus usable."""
        self._started = True

    async def stop(self) -> None:
        """Stop all servers and subscriptions and fail pending calls with BusTimeout."""
        self._started = False
        await asyncio.gather(*(r.stop() for r in list(self._receivers)))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BusTimeout("bus stopped before a reply arrived"))
        self._pending.clear()
        self._rpc.clear()
        self._fanout.clear()
        self._notify.clear()

    def _check(self) -> None:
        if not self._started:
            raise RuntimeError("bus is not started")

    # -- routing --------------------------------------------------------------------------

    def _delete_queue(self, queue: _MemQueue) -> None:
        if self._rpc.get(queue.name) is queue:
            del self._rpc[queue.name]
        for queues in self._fanout.values():
            queues.discard(queue)
        if queue.name in self._notify and self._notify[queue.name][1] is queue:
            del self._notify[queue.name]
        queue.buffer.clear()

    def _rpc_queue(self, routing_key: str) -> _MemQueue:
        queue = self._rpc.get(routing_key)
        if queue is None:
            queue = _MemQueue(routing_key, auto_delete=False, max_length=MAX_LENGTH)
            self._rpc[routing_key] = queue
        return queue

    def _deliver_reply(self, reply_id: str, body: bytes) -> None:
        future = self._pending.get(reply_id)
        if future is not None and not future.done():
            future.set_result(body)

    # -- RPC --------------------------------------------------------------------------------

    async def call(
        self,
        target: Target,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        timeout: float = 60.0,  # noqa: ASYNC109
        **kwargs: Any,
    ) -> Any:
        """Invoke method on one server of target and return its result (see Bus.call)."""
        self._check()
        body = codec.pack_request(method, kwargs, context, target.version)
        loop = asyncio.get_running_loop()
        reply_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[reply_id] = future
        try:
            queue = self._rpc.get(target.routing_key)
            if queue is not None:
                queue.put(_Delivery(body, reply_id, loop.time() + timeout))
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            raise BusTimeout(f"no reply to {method!r} from {target} within {timeout}s") from None
        finally:
            self._pending.pop(reply_id, None)
        return codec.unpack_reply(reply)

    async def cast(
        self,
        target: Target,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Send method to one server of target without waiting (see Bus.cast)."""
        self._check()
        body = codec.pack_request(method, kwargs, context, target.version)
        queue = self._rpc.get(target.routing_key)
        if queue is not None:
            queue.put(_Delivery(body))

    async def fanout(
        self,
        topic: str,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Send method to every server on topic (see Bus.fanout)."""
        self._check()
        Target(topic)  # validates the topic name
        body = codec.pack_request(method, kwargs, context, None)
        for queue in list(self._fanout.get(topic, ())):
            queue.put(_Delivery(body))

    async def serve(self, target: Target, endpoint: object) -> MemoryServer:
        """Serve endpoint on target (see Bus.serve)."""
        self._check()
        server = MemoryServer(self, Dispatcher(target, endpoint), self._concurrency, self._grace)
        self._receivers.add(server)
        server._attach(self._rpc_queue(target.topic))
        if target.server is not None:
            server._attach(self._rpc_queue(target.routing_key))
        fanout_queue = _MemQueue(f"fanout:{target.topic}:{uuid.uuid4().hex}", auto_delete=True)
        self._fanout.setdefault(target.topic, set()).add(fanout_queue)
        server._attach(fanout_queue)
        return server

    # -- notifications ----------------------------------------------------------------------

    async def notify(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        publisher_id: str,
        priority: str = "INFO",
        context: dict[str, Any] | None = None,
    ) -> None:
        """Publish a notification (see Bus.notify)."""
        self._check()
        body = codec.pack_notification(
            event_type, payload, publisher_id=publisher_id, priority=priority, context=context
        )
        for pattern, queue in list(self._notify.values()):
            if codec.event_matches(pattern, event_type):
                queue.put(_Delivery(body))

    async def subscribe(
        self,
        event_pattern: str,
        handler: NotificationHandler,
        *,
        pool: str | None = None,
    ) -> MemorySubscription:
        """Subscribe handler to notifications matching event_pattern (see Bus.subscribe)."""
        self._check()
        if not event_pattern:
            raise ValueError("event_pattern must not be empty")
        sub = MemorySubscription(self, event_pattern, handler, self._concurrency, self._grace)
        if pool is None:
            name = f"notify:{uuid.uuid4().hex}"
            queue = _MemQueue(name, auto_delete=True)
        else:
            name = f"notify-pool:{pool}:{event_pattern}"
            existing = self._notify.get(name)
            queue = (
                existing[1]
                if existing is not None
                else _MemQueue(name, auto_delete=False, max_length=MAX_LENGTH)
            )
        self._notify[name] = (event_pattern, queue)
        self._receivers.add(sub)
        sub._attach(queue)
        return sub

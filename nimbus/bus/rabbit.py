"""RabbitMQ bus backend (aio-pika, robust connection).

Topology (all exchanges are durable topic exchanges):
- "nimbus.rpc": routing key "<topic>" goes to the work queue "nimbus.rpc.<topic>", shared by
  every server of the topic (RabbitMQ round-robins it); "<topic>:<server>" goes to
  "nimbus.rpc.<topic>:<server>". Both outlive their consumers (so casts and calls sent while
  a server restarts or reconnects wait for it) until unused for QUEUE_EXPIRES_MS, and hold
  at most QUEUE_MAX_LENGTH messages (oldest dropped). A routing key no server ever declared
  a queue for is dropped, so the call times out. Messages are transient; a call expires in
  the queue when its timeout passes. Servers ack on receipt (at most once: a handler never
  runs twice, even if the connection drops mid-handler).
- "nimbus.fanout": routing key "<topic>"; each server has a private exclusive queue.
- "nimbus.notify": routing key = event_type. A plain subscriber has a private exclusive
  queue; a pool has the shared durable queue "nimbus.notify.<pool>.<pattern>" (unsafe
  characters replaced, hash appended) that outlives its subscribers with the same limits.
  Notifications are published persistent and acked after the handler returns, so a pool gets
  each notification at least once even if a subscriber dies mid-handler. Bindings are a
  superset of the fnmatch pattern; receivers filter exactly.
- Replies go through the default exchange to the bus's exclusive "nimbus.reply.<id>" queue,
  matched to calls by correlation id.

Every publish waits for a publisher confirm. While the broker is unreachable (and until every
channel, queue and consumer of the bus is restored after reconnecting), publishes
(call, cast, fanout, notify, replies) wait for the reconnect and retry until their deadline
(call: its timeout; others: publish_timeout), then raise BusTimeout. connect_robust
re-declares queues and bindings and re-consumes after a reconnect.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

from nimbus.bus import codec
from nimbus.bus.dispatch import (
    DEFAULT_CONCURRENCY,
    DEFAULT_STOP_GRACE,
    Dispatcher,
    NotificationHandler,
    TaskPool,
    run_notification_handler,
)
from nimbus.bus.errors import BusError, BusTimeout
from nimbus.bus.target import Target

log = logging.getLogger("nimbus.bus.rabbit")

RPC_EXCHANGE = "nimbus.rpc"
FANOUT_EXCHANGE = "nimbus.fanout"
NOTIFY_EXCHANGE = "nimbus.notify"
QUEUE_EXPIRES_MS = 600_000
QUEUE_MAX_LENGTH = 10_000
_SHARED_QUEUE_ARGS: dict[str, Any] = {
    "x-expires": QUEUE_EXPIRES_MS,
    "x-max-length": QUEUE_MAX_LENGTH,
}
_CLEANUP_TIMEOUT = 5.0


_UNSAFE_IN_QUEUE_NAME = re.compile(r"[^a-zA-Z0-9\-_.:@,/+]")


def _queue_name(*parts: str) -> str:
    """A valid AMQP queue name from parts; unsafe characters are replaced and a hash added."""
    raw = ".".join(parts)
    name = _UNSAFE_IN_QUEUE_NAME.sub("_", raw)
    if name != raw or len(name.encode()) > 200:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
        name = f"{name.encode()[:180].decode(errors='ignore')}-{digest}"
    return name


class _RabbitReceiver:
    """Consumes queues on its own channel through one TaskPool."""

    def __init__(self, bus: RabbitBus, concurrency: int, grace: float) -> None:
        self._bus = bus
        self._concurrency = concurrency
        self._pool = TaskPool(concurrency)
        self._grace = grace
        self._channel: AbstractRobustChannel | None = None
        self._consumers: list[tuple[AbstractRobustQueue, str]] = []
        self._stopped = False

    async def _open(self) -> AbstractRobustChannel:
        channel = await self._bus._conn().channel(publisher_confirms=False)
        assert isinstance(channel, AbstractRobustChannel)
        self._channel = channel
        await channel.set_qos(prefetch_count=self._concurrency)
        return channel

    async def _consume(self, queue: AbstractRobustQueue) -> None:
        tag = await queue.consume(self._on_message)
        self._consumers.append((queue, tag))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop consuming, let running handlers finish (bounded grace), close the channel."""
        if self._stopped:
            return
        self._stopped = True
        self._bus._receivers.discard(self)
        # When disconnected, don't wait for the broker: cancel() and close() forget the
        # consumers and the channel before their first await, so nothing is restored later.
        for queue, tag in self._consumers:
            try:
                async with asyncio.timeout(self._bus._cleanup_timeout()):
                    await queue.cancel(tag)
            except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
                log.debug("could not cancel consumer %s: %s", tag, exc)
        self._consumers.clear()
        await self._pool.drain(self._grace)
        if self._channel is not None:
            try:
                async with asyncio.timeout(self._bus._cleanup_timeout()):
                    await self._channel.close()
            except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
                log.debug("could not close channel: %s", exc)


class RabbitServer(_RabbitReceiver):
    """An endpoint served on RabbitMQ."""

    def __init__(
        self, bus: RabbitBus, dispatcher: Dispatcher, concurrency: int, grace: float
    ) -> None:
        super().__init__(bus, concurrency, grace)
        self.target = dispatcher.target
        self._dispatcher = dispatcher

    async def _setup(self) -> None:
        target = self.target
        channel = await self._open()
        work = await channel.declare_queue(
            _queue_name("nimbus.rpc", target.topic), arguments=_SHARED_QUEUE_ARGS
        )
        await work.bind(RPC_EXCHANGE, routing_key=target.topic)
        await self._consume(work)
        if target.server is not None:
            direct = await channel.declare_queue(
                _queue_name("nimbus.rpc", target.routing_key), arguments=_SHARED_QUEUE_ARGS
            )
            await direct.bind(RPC_EXCHANGE, routing_key=target.routing_key)
            await self._consume(direct)
        fanout = await channel.declare_queue(
            _queue_name("nimbus.fanout", target.topic, uuid.uuid4().hex),
            exclusive=True,
            auto_delete=True,
        )
        await fanout.bind(FANOUT_EXCHANGE, routing_key=target.topic)
        await self._consume(fanout)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopped:
            return  # not acked: the broker hands it to another server
        await self._pool.acquire()
        try:
            if self._stopped:
                self._pool.release()
                return
            await message.ack()  # at most once: ack before running
        except asyncio.CancelledError:
            self._pool.release()
            raise
        except Exception as exc:
            self._pool.release()
            log.debug("could not ack RPC message (channel gone, will be redelivered): %s", exc)
            return
        self._pool.spawn(self._handle(message.body, message.reply_to, message.correlation_id))

    async def _handle(self, body: bytes, reply_to: str | None, correlation_id: str | None) -> None:
        want_reply = bool(reply_to and correlation_id)
        reply = await self._dispatcher.handle(body, reply=want_reply)
        if not want_reply or reply is None or reply_to is None:
            return
        try:
            await self._bus._publish(
                "",
                reply_to,
                lambda: self._bus._message(reply, correlation_id=correlation_id),
                timeout=self._bus._publish_timeout,
            )
        except BusError as exc:
            log.warning("could not send reply for %s: %s", self.target, exc)


class RabbitSubscription(_RabbitReceiver):
    """A notification subscription on RabbitMQ."""

    def __init__(
        self,
        bus: RabbitBus,
        pattern: str,
        handler: NotificationHandler,
        concurrency: int,
        grace: float,
    ) -> None:
        super().__init__(bus, concurrency, grace)
        self.pattern = pattern
        self._handler = handler

    async def _setup(self, pool: str | None) -> None:
        channel = await self._open()
        if pool is None:
            queue = await channel.declare_queue(
                f"nimbus.notify.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
            )
        else:
            queue = await channel.declare_queue(
                _queue_name("nimbus.notify", pool, self.pattern),
                durable=True,
                arguments=_SHARED_QUEUE_ARGS,
            )
        await queue.bind(NOTIFY_EXCHANGE, routing_key=codec.binding_key(self.pattern))
        await self._consume(queue)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopped:
            return
        await self._pool.acquire()
        if self._stopped:
            self._pool.release()
            return
        self._pool.spawn(self._handle(message))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            await run_notification_handler(self._handler, self.pattern, message.body)
        finally:
            try:
                await message.ack()  # at least once: ack after the handler
            except Exception as exc:
                log.debug("could not ack notification (will be redelivered): %s", exc)


class RabbitBus:
    """The RabbitMQ bus ("amqp://user:password@host:port/vhost")."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        stop_grace: float = DEFAULT_STOP_GRACE,
        publish_timeout: float = 30.0,
        reconnect_interval: float = 1.0,
    ) -> None:
        self._url = url
        self._concurrency = concurrency
        self._grace = stop_grace
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._id = uuid.uuid4().hex[:16]
        self._reply_queue = f"nimbus.reply.{self._id}"
        self._connection: AbstractRobustConnection | None = None
        self._pub: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._receivers: set[_RabbitReceiver] = set()
        self._stopping = False
        self.reconnect_count = 0
        """How many times the connection was re-established (diagnostics)."""
        self._reconnected = asyncio.Event()
        # set while connected with every channel, queue and consumer restored
        self._ready = asyncio.Event()

    def __repr__(self) -> str:
        url = URL(self._url).with_password(None) if "@" in self._url else self._url
        return f"<RabbitBus {url} id={self._id}>"

    def _conn(self) -> AbstractRobustConnection:
        if self._connection is None or self._stopping:
            raise RuntimeError("bus is not started")
        return self._connection

    async def start(self) -> None:
        """Connect (raises if the broker is unreachable now) and declare the exchanges."""
        if self._connection is not None:
            return
        kwargs: dict[str, Any] = {}
        if "reconnect_interval" not in URL(self._url).query:
            kwargs["reconnect_interval"] = self._reconnect_interval
        connection = await aio_pika.connect_robust(
            self._url,
            timeout=10,
            client_properties={"connection_name": f"nimbus-bus-{self._id}"},
            **kwargs,
        )
        try:
            connection.reconnect_callbacks.add(self._on_reconnect)
            connection.close_callbacks.add(self._on_connection_lost)
            pub = await connection.channel(publisher_confirms=True)
            assert isinstance(pub, AbstractRobustChannel)
            for name in (RPC_EXCHANGE, FANOUT_EXCHANGE, NOTIFY_EXCHANGE):
                self._exchanges[name] = await pub.declare_exchange(
                    name, aio_pika.ExchangeType.TOPIC, durable=True
                )
            replies = await connection.channel(publisher_confirms=False)
            assert isinstance(replies, AbstractRobustChannel)
            queue = await replies.declare_queue(self._reply_queue, exclusive=True, auto_delete=True)
            await queue.consume(self._on_reply, no_ack=True)
        except BaseException:
            await connection.close()
            raise
        self._pub = pub
        self._connection = connection
        self._stopping = False
        self._ready.set()

    async def stop(self) -> None:
        """Stop all servers and subscriptions, fail pending calls, close the connection."""
        if self._connection is None:
            return
        self._stopping = True
        await asyncio.gather(*(r.stop() for r in list(self._receivers)))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BusTimeout("bus stopped before a reply arrived"))
        self._pending.clear()
        connection, self._connection, self._pub = self._connection, None, None
        self._exchanges.clear()
        self._ready.set()  # wake publishers waiting for a reconnect: they fail with BusError
        try:
            await connection.close()
        except CONNECTION_EXCEPTIONS as exc:
            log.debug("error closing connection: %s", exc)

    def _cleanup_timeout(self) -> float:
        return _CLEANUP_TIMEOUT if self._ready.is_set() else 0.01

    def _on_connection_lost(self, _connection: object, exc: BaseException | None = None) -> None:
        self._ready.clear()
        if not self._stopping:
            log.warning("bus %s lost its RabbitMQ connection (%s); reconnecting", self._id, exc)

    def _on_reconnect(self, _connection: object) -> None:
        self.reconnect_count += 1
        self._ready.set()
        self._reconnected.set()
        log.info("bus %s reconnected to RabbitMQ", self._id)

    async def wait_for_reconnect(self, count: int = 1) -> None:
        """Wait until the connection has been re-established `count` times in total.

        By then queues, bindings and consumers have been restored.
        """
        while self.reconnect_count < count:
            self._reconnected.clear()
            await self._reconnected.wait()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        correlation_id = message.correlation_id
        future = self._pending.get(correlation_id) if correlation_id else None
        if future is not None and not future.done():
            future.set_result(message.body)

    # -- publishing -------------------------------------------------------------------------

    def _message(
        self,
        body: bytes,
        *,
        persistent: bool = False,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: float | None = None,
    ) -> aio_pika.Message:
        return aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            correlation_id=correlation_id,
            reply_to=reply_to,
            expiration=expiration,
            app_id="nimbus",
        )

    async def _publish(
        self,
        exchange: str,
        routing_key: str,
        make_message: Callable[[], aio_pika.Message],
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Publish with a broker confirm, retrying across reconnects until the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        attempt = 0
        while True:
            if self._pub is None:
                raise BusError("bus is stopped")
            channel = self._pub
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BusTimeout(
                    f"could not publish to {exchange or 'reply'!r}/{routing_key!r} within "
                    f"{timeout}s (broker unreachable?)"
                )
            reason: object
            try:
                async with asyncio.timeout(remaining):
                    # all of our channels restored (the reply queue included), not just this one
                    await self._ready.wait()
                    if self._pub is not channel:
                        raise BusError("bus is stopped")
                    await channel.ready()
                    target = channel.default_exchange if not exchange else self._exchanges[exchange]
                    await target.publish(make_message(), routing_key, mandatory=False)
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                reason = "publish interrupted by channel close"
            except TimeoutError as exc:
                reason = exc
            except CONNECTION_EXCEPTIONS as exc:
                reason = exc
            attempt += 1
            log.debug("publish to %s/%s failed (%s); retrying", exchange, routing_key, reason)
            pause = min(0.1 * attempt, 1.0, max(deadline - loop.time(), 0.0))
            await asyncio.sleep(pause)

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
        self._conn()
        body = codec.pack_request(method, kwargs, context, target.version)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[correlation_id] = future
        try:
            try:
                await self._publish(
                    RPC_EXCHANGE,
                    target.routing_key,
                    lambda: self._message(
                        body,
                        correlation_id=correlation_id,
                        reply_to=self._reply_queue,
                        expiration=max(deadline - loop.time(), 0.001),
                    ),
                    timeout=timeout,
                )
                async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                    reply = await future
            except (TimeoutError, BusTimeout):
                raise BusTimeout(
                    f"no reply to {method!r} from {target} within {timeout}s"
                ) from None
        finally:
            self._pending.pop(correlation_id, None)
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
        self._conn()
        body = codec.pack_request(method, kwargs, context, target.version)
        await self._publish(
            RPC_EXCHANGE,
            target.routing_key,
            lambda: self._message(body),
            timeout=self._publish_timeout,
        )

    async def fanout(
        self,
        topic: str,
        method: str,
        *,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Send method to every server on topic (see Bus.fanout)."""
        self._conn()
        Target(topic)  # validates the topic name
        body = codec.pack_request(method, kwargs, context, None)
        await self._publish(
            FANOUT_EXCHANGE, topic, lambda: self._message(body), timeout=self._publish_timeout
        )

    async def serve(self, target: Target, endpoint: object) -> RabbitServer:
        """Serve endpoint on target (see Bus.serve)."""
        self._conn()
        server = RabbitServer(self, Dispatcher(target, endpoint), self._concurrency, self._grace)
        self._receivers.add(server)
        try:
            await server._setup()
        except BaseException:
            await server.stop()
            raise
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
        self._conn()
        body = codec.pack_notification(
            event_type, payload, publisher_id=publisher_id, priority=priority, context=context
        )
        await self._publish(
            NOTIFY_EXCHANGE,
            event_type,
            lambda: self._message(body, persistent=True),
            timeout=self._publish_timeout,
        )

    async def subscribe(
        self,
        event_pattern: str,
        handler: NotificationHandler,
        *,
        pool: str | None = None,
    ) -> RabbitSubscription:
        """Subscribe handler to notifications matching event_pattern (see Bus.subscribe)."""
        self._conn()
        if not event_pattern:
            raise ValueError("event_pattern must not be empty")
        sub = RabbitSubscription(self, event_pattern, handler, self._concurrency, self._grace)
        self._receivers.add(sub)
        try:
            await sub._setup(pool)
        except BaseException:
            await sub.stop()
            raise
        return sub

"""The metadata proxy: 169.254.169.254:80 inside each DHCP namespace, served by this process.

For each network the DHCP agent runs, it calls `add(network_id, namespace)`: a listening
socket is made inside that namespace (nimbus.common.netns.socket_in) and served by this
process's event loop, so there is no extra process per network. A request is answered thus:

    peer address + network  ->  the port (network API, service token; cached briefly)
    port of a server (device_owner compute:*)  ->  its device_id is the instance
    bus call "compute-metadata".get(instance_uuid, path, remote_address)  ->  the answer

Anything that is no server's port gets 404. HTTP/1.1 by h11, GET and HEAD only, one request
per connection (Connection: close)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import h11

from nimbus.bus import BusTimeout, Target
from nimbus.clients.network import NetworkClient
from nimbus.common import netns

if TYPE_CHECKING:
    from nimbus.cloud import Cloud

LOG = logging.getLogger(__name__)

METADATA = Target("compute-metadata", version="1.0")
METADATA_ADDRESS = "169.254.169.254"
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
CACHE_SECONDS = 5.0  # how long a (network, address) -> instance answer is reused
MISS_CACHE_SECONDS = 1.0  # ... and an answer that there is none
READ_TIMEOUT = 10.0  # a client gets this long to send its request
CALL_TIMEOUT = 20.0  # compute gets this long to answer
MAX_REQUEST = 16384


@dataclass
class _Listener:
    namespace: str
    address: str
    port: int
    server: asyncio.Server
    connections: set[asyncio.Task[Any]] = field(default_factory=set)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    extra: tuple[tuple[str, str], ...] = ()


def _error(status: int, title: str, detail: str) -> _Reply:
    return _Reply(status, f"{status} {title}\n\n{detail}\n\n".encode())


NOT_FOUND = _error(404, "Not Found", "The resource could not be found.")


def _listening_socket(namespace: str, address: str, port: int) -> socket.socket:
    """Blocking: run through asyncio.to_thread. IP_FREEBIND lets the socket bind before the
    DHCP agent has put the address on its interface."""
    sock = netns.socket_in(namespace)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class MetadataProxy:
    def __init__(self, cloud: Cloud, host: str) -> None:
        self.cloud = cloud
        self.host = host
        self._listeners: dict[str, _Listener] = {}
        self._lock = asyncio.Lock()
        self._instances: dict[tuple[str, str], tuple[float, str | None]] = {}

    @property
    def networks(self) -> dict[str, tuple[str, str, int]]:
        """network id -> (namespace, address, port) served."""
        return {net: (li.namespace, li.address, li.port)
                for net, li in self._listeners.items()}

    async def add(self, network_id: str, namespace: str, address: str = METADATA_ADDRESS,
                  port: int = 80) -> None:
        """Serve metadata for `network_id` on address:port inside `namespace` (idempotent;
        a different namespace or address replaces the one served before)."""
        async with self._lock:
            current = self._listeners.get(network_id)
            if current is not None:
                if (current.namespace, current.address, current.port) == (namespace, address,
                                                                          port):
                    return
                await self._close(network_id)
            sock = await asyncio.to_thread(_listening_socket, namespace, address, port)
            try:
                server = await asyncio.start_server(partial(self._connection, network_id),
                                                    sock=sock, limit=MAX_REQUEST)
            except BaseException:
                sock.close()
                raise
            self._listeners[network_id] = _Listener(namespace, address, port, server)
            LOG.info("metadata proxy for network %s on %s:%s in %s", network_id, address,
                     port, namespace)

    async def remove(self, network_id: str) -> None:
        async with self._lock:
            await self._close(network_id)

    async def stop(self) -> None:
        async with self._lock:
            for network_id in list(self._listeners):
                await self._close(network_id)
        self._instances.clear()

    async def _close(self, network_id: str) -> None:
        listener = self._listeners.pop(network_id, None)
        if listener is None:
            return
        listener.server.close()
        for task in list(listener.connections):
            task.cancel()
        if listener.connections:
            await asyncio.gather(*listener.connections, return_exceptions=True)
        await listener.server.wait_closed()
        for key in [k for k in self._instances if k[0] == network_id]:
            self._instances.pop(key, None)
        LOG.info("metadata proxy for network %s stopped", network_id)

    # -- who is asking ------------------------------------------------------------------------
    async def instance_for(self, network_id: str, address: str) -> str | None:
        """The server whose port on `network_id` has `address`, or None."""
        key = (network_id, address)
        cached = self._instances.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        ports = await self.cloud.clients.get(NetworkClient).ports(
            {"network_id": network_id, "fixed_ips": f"ip_address={address}"})
        found = next((p["device_id"] for p in ports
                      if str(p.get("device_owner") or "").startswith("compute:")
                      and p.get("device_id")), None)
        ttl = CACHE_SECONDS if found else MISS_CACHE_SECONDS
        self._instances[key] = (time.monotonic() + ttl, found)
        return found

    async def answer(self, network_id: str, address: str, method: str, path: str) -> _Reply:
        if method not in ("GET", "HEAD"):
            return _Reply(405, b"405 Method Not Allowed\n\n", extra=(("Allow", "GET, HEAD"),))
        try:
            instance = await self.instance_for(network_id, address)
        except Exception:
            LOG.warning("metadata: could not look up %s on network %s", address, network_id,
                        exc_info=True)
            return _error(500, "Internal Server Error", "The port could not be looked up.")
        if instance is None:
            LOG.info("metadata: %s on network %s is no server's address", address, network_id)
            return NOT_FOUND
        try:
            wire: dict[str, Any] = await self.cloud.bus.call(
                METADATA, "get", instance_uuid=instance, path=path, remote_address=address,
                timeout=CALL_TIMEOUT)
        except BusTimeout:
            return _error(504, "Gateway Timeout", "The metadata service did not answer.")
        except Exception:
            LOG.warning("metadata of %s at %s failed", instance, path, exc_info=True)
            return _error(500, "Internal Server Error", "The metadata service failed.")
        body = str(wire.get("body") or "")
        raw = base64.b64decode(body) if wire.get("body_base64") else body.encode("utf-8")
        return _Reply(int(wire["status"]), raw, str(wire.get("content_type") or "text/plain"))

    # -- HTTP ---------------------------------------------------------------------------------
    async def _connection(self, network_id: str, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        listener = self._listeners.get(network_id)
        task = asyncio.current_task()
        if listener is not None and task is not None:
            listener.connections.add(task)
        try:
            await self._exchange(network_id, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            LOG.warning("metadata proxy connection failed", exc_info=True)
        finally:
            if listener is not None and task is not None:
                listener.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _exchange(self, network_id: str, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
        try:
            request = await asyncio.wait_for(_read_request(conn, reader), READ_TIMEOUT)
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(conn, writer, _error(exc.error_status_hint, "Bad Request",
                                                 str(exc)), head=False)
            return
        except TimeoutError:
            return
        if request is None:
            return
        method = request.method.decode("ascii", errors="replace")
        path = request.target.decode("latin-1")
        reply = await self.answer(network_id, address, method, path)
        LOG.debug("metadata %s %s %s from %s: %s", network_id, method, path, address,
                  reply.status)
        await _send(conn, writer, reply, head=method == "HEAD")


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(MAX_REQUEST))
            continue
        if isinstance(event, h11.Request):
            return event
        return None  # the client closed (or paused) before a whole request


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, reply: _Reply, *,
                head: bool) -> None:
    headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body))),
               ("Connection", "close"), *reply.extra]
    data = conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
    if not head and reply.body:
        data += conn.send(h11.Data(data=reply.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    writer.write(data)
    await writer.drain()

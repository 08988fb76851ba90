"""QMP through the `qemu.qmp` package: one short connection per operation (QEMU's monitor
serves one client at a time, and a fresh driver object must be able to talk to a guest
another one started), commands, and waiting for events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from qemu.qmp import EventListener, ExecuteError, QMPClient, QMPError

from nimbus.compute.virt.driver import DriverError

logging.getLogger("qemu.qmp").setLevel(logging.WARNING)

CONNECT_TIMEOUT = 10.0


class QmpUnavailable(DriverError):
    """Nobody answers on the QMP socket (QEMU is not running)."""


class QmpCommandError(DriverError):
    pass


class Session:
    def __init__(self, client: QMPClient, name: str) -> None:
        self.client = client
        self.name = name

    async def execute(self, command: str, arguments: dict[str, Any] | None = None, *,
                      time_limit: float = 30.0) -> Any:
        try:
            return await asyncio.wait_for(self.client.execute(command, arguments), time_limit)
        except ExecuteError as exc:
            raise QmpCommandError(f"QMP {command} on {self.name} failed: "
                                  f"{exc.error_class}: {exc}") from None
        except TimeoutError:
            raise QmpCommandError(f"QMP {command} on {self.name} timed out after "
                                  f"{time_limit:.0f}s") from None
        except QMPError as exc:
            raise QmpUnavailable(f"QMP {command} on {self.name}: {exc}") from None

    @asynccontextmanager
    async def events(self, names: list[str], accept: Callable[[dict[str, Any]], bool] | None
                     = None) -> AsyncIterator[EventListener]:
        """Listen for these events while inside the block (register before the command
        that causes them)."""
        listener = EventListener(names, (lambda ev: accept(dict(ev))) if accept else None)
        with self.client.listen(listener):
            yield listener

    @staticmethod
    async def next_event(listener: EventListener, time_limit: float) -> dict[str, Any]:
        try:
            return dict(await asyncio.wait_for(listener.get(), time_limit))
        except TimeoutError:
            raise QmpCommandError(f"no {'/'.join(sorted(listener.names))} event in "
                                  f"{time_limit:.0f}s") from None


@asynccontextmanager
async def connect(path: Path, name: str = "guest", *,
                  time_limit: float = CONNECT_TIMEOUT) -> AsyncIterator[Session]:
    client = QMPClient(name)
    try:
        await asyncio.wait_for(client.connect(str(path)), time_limit)
    except (QMPError, OSError, TimeoutError) as exc:
        with_reason = getattr(exc, "exc", None) or exc
        raise QmpUnavailable(f"cannot reach the QMP socket of {name} ({path}): "
                             f"{with_reason}") from None
    try:
        yield Session(client, name)
    finally:
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001 - QEMU may have quit under us; nothing to close
            pass


async def execute(path: Path, command: str, arguments: dict[str, Any] | None = None, *,
                  name: str = "guest", time_limit: float = 30.0) -> Any:
    async with connect(path, name) as session:
        return await session.execute(command, arguments, time_limit=time_limit)

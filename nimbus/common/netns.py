"""Commands and sockets inside named network namespaces: the one way the data plane (QEMU
driver, network agents) touches the host. A node's whole data plane may live in a namespace
(tests always do that), so every call takes the namespace it runs in; None is the root one.

Commands run as asyncio subprocesses (`ip netns exec NS cmd`); a failure raises CommandError
with the command's stderr, which callers put into a fault or a port's ERROR reason."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


class CommandError(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.argv)} failed ({returncode}): {self.stderr}")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def wrap(argv: Sequence[str], namespace: str | None) -> list[str]:
    """The argv that runs `argv` inside `namespace` (unchanged for the root namespace)."""
    if namespace:
        return ["ip", "netns", "exec", namespace, *argv]
    return list(argv)


async def run(argv: Sequence[str], *, namespace: str | None = None, check: bool = True,
              input: str | None = None, time_limit: float = 30.0) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *wrap(argv, namespace), stdin=asyncio.subprocess.PIPE if input is not None
        else asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input.encode() if input is not None else None), time_limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CommandError(argv, -9, f"timed out after {time_limit}s") from None
    result = Result(proc.returncode or 0, out.decode(errors="replace"),
                    err.decode(errors="replace"))
    if check and result.returncode != 0:
        raise CommandError(argv, result.returncode, result.stderr or result.stdout)
    return result


def exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


async def ensure(namespace: str) -> None:
    """Create the namespace (with lo up) unless it is there."""
    if not exists(namespace):
        done = await run(["ip", "netns", "add", namespace], check=False)
        if done.returncode != 0 and not exists(namespace):
            raise CommandError(["ip", "netns", "add", namespace], done.returncode,
                               done.stderr)
    await run(["ip", "link", "set", "lo", "up"], namespace=namespace)


async def delete(namespace: str) -> None:
    """Remove the namespace; one that is not there is not an error."""
    if exists(namespace):
        await run(["ip", "netns", "delete", namespace], check=False)


def list_namespaces() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(namespace: str | None, family: int = socket.AF_INET,
              kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside `namespace`; it stays there whatever thread uses it later.

    Blocking and short: call it through asyncio.to_thread. The calling thread enters the
    namespace only while it makes the socket, then goes back to its own."""
    if not namespace:
        return socket.socket(family, kind)
    with _setns_lock, open("/proc/thread-self/ns/net", "rb") as home, \
            open(NETNS_DIR / namespace, "rb") as target:
        _setns(target.fileno())
        try:
            return socket.socket(family, kind)
        finally:
            _setns(home.fileno())

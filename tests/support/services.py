"""Real PostgreSQL, MariaDB and RabbitMQ for tests: each test run gets its own database or
vhost and drops it afterwards. Missing services skip with a reason, except under CI=true,
where they fail: CI must exercise them."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

PG = ("127.0.0.1", 5432)
MARIADB = ("127.0.0.1", 3306)
RABBIT = ("127.0.0.1", 5672)


def reachable(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=1):
            return True
    except OSError:
        return False


def unavailable(message: str) -> NoReturn:
    """The machine lacks what the test needs: skip it, or fail it under CI=true, where
    everything must be there."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(message + " (CI=true: this must not be skipped)")
    pytest.skip(message)


def need(addr: tuple[str, int], what: str) -> None:
    if not reachable(addr):
        unavailable(f"{what} not reachable at {addr[0]}:{addr[1]}")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG[0], port=PG[1], user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _maria(sql: str) -> None:
    import aiomysql

    conn = await aiomysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", password="")
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql)
        await conn.commit()
    finally:
        conn.close()


def create_database(kind: str) -> tuple[str, str]:
    """Returns (url, name) of a new empty database of that kind."""
    name = unique_name("nimbus_test")
    if kind == "postgresql":
        need(PG, "PostgreSQL")
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
        return f"postgresql+asyncpg://postgres@{PG[0]}:{PG[1]}/{name}", name
    if kind == "mariadb":
        need(MARIADB, "MariaDB")
        asyncio.run(_maria(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        return f"mysql+aiomysql://root@{MARIADB[0]}:{MARIADB[1]}/{name}", name
    raise ValueError(kind)


def drop_database(kind: str, name: str) -> None:
    if kind == "postgresql":
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    elif kind == "mariadb":
        asyncio.run(_maria(f"DROP DATABASE IF EXISTS `{name}`"))


def create_vhost() -> str:
    need(RABBIT, "RabbitMQ")
    vhost = unique_name("nimbus-test")
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                    ".*"], check=True, capture_output=True)
    return vhost


def delete_vhost(vhost: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database of `kind` ("postgresql", "mariadb") for the test; its URL. Dropped
    afterwards."""
    url, name = create_database(kind)
    try:
        yield url
    finally:
        drop_database(kind, name)

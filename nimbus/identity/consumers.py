"""OS-OAUTH1 consumers. The secret is shown once, when the consumer is created."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.errors import not_found
from nimbus.identity.models import Consumer
from nimbus.web.errors import BadRequest

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

CORE = {"id", "description", "secret", "links"}
EVENT = "identity.OS-OAUTH1:consumer"  # Keystone's resource type for consumer notifications


def render(consumer: Consumer, base: str, *, with_secret: bool = False) -> dict[str, Any]:
    body = {**(consumer.extra or {}), "id": consumer.id, "description": consumer.description,
            "links": {"self": f"{base}/v3/OS-OAUTH1/consumers/{consumer.id}"}}
    if with_secret:
        body["secret"] = consumer.secret
    return body


async def get(session: AsyncSession, consumer_id: str) -> Consumer:
    consumer = await session.get(Consumer, consumer_id)
    if consumer is None:
        raise not_found("consumer", consumer_id)
    return consumer


async def list_consumers(session: AsyncSession) -> list[Consumer]:
    return list((await session.scalars(select(Consumer).order_by(Consumer.id))).all())


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any]) -> Consumer:
    consumer = Consumer(id=new_id(), description=data.get("description"),
                        secret=secrets.token_hex(16),
                        extra={k: v for k, v in data.items() if k not in CORE})
    session.add(consumer)
    await session.flush()
    await svc.notify(f"{EVENT}.created", consumer.id)
    return consumer


async def update(session: AsyncSession, svc: IdentityService, consumer: Consumer,
                 data: dict[str, Any]) -> None:
    if "id" in data and data["id"] != consumer.id:
        raise BadRequest("Cannot change ID")
    if "secret" in data:
        raise BadRequest("Invalid input for field 'consumer': the secret cannot be updated.")
    if "description" in data:
        consumer.description = data["description"]
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        consumer.extra = {**(consumer.extra or {}), **extra}
    await svc.notify(f"{EVENT}.updated", consumer.id)


async def delete(session: AsyncSession, svc: IdentityService, consumer: Consumer) -> None:
    await session.delete(consumer)
    await session.flush()
    await svc.notify(f"{EVENT}.deleted", consumer.id)

"""Credentials (/v3/credentials) and the EC2 view of them (/v3/users/{u}/credentials/OS-EC2).

An EC2 credential is a credential of type "ec2" whose blob is JSON with "access" and "secret";
its id is the SHA-256 of the access key, as in Keystone, so it can be found by access key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.ids import new_id
from nimbus.identity.errors import not_found
from nimbus.identity.models import Credential
from nimbus.web.errors import BadRequest, Conflict, Unauthorized

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

EC2 = "ec2"
CORE = {"id", "user_id", "project_id", "type", "blob", "links"}
# Blob keys that tie an EC2 credential to how it was made; an update may not change them.
FIXED_BLOB_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")


def hash_access_key(access: str) -> str:
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


def render(cred: Credential, base: str) -> dict[str, Any]:
    return {**(cred.extra or {}), "id": cred.id, "user_id": cred.user_id,
            "project_id": cred.project_id, "type": cred.type, "blob": cred.blob,
            "links": {"self": f"{base}/v3/credentials/{cred.id}"}}


def ec2_blob(blob: str | None) -> dict[str, Any]:
    """The parsed blob of an EC2 credential: a JSON object with an access key."""
    try:
        parsed = json.loads(blob or "")
    except ValueError:
        raise BadRequest("Invalid blob in credential") from None
    if not parsed or not isinstance(parsed, dict):
        raise BadRequest("Expecting to find blob in credential. The server could not comply "
                         "with the request since it is either malformed or otherwise "
                         "incorrect. The client is assumed to be in error.")
    if parsed.get("access") is None:
        raise BadRequest("Expecting to find access in credential. The server could not comply "
                         "with the request since it is either malformed or otherwise "
                         "incorrect. The client is assumed to be in error.")
    return parsed


async def get(session: AsyncSession, credential_id: str) -> Credential:
    cred = await session.get(Credential, credential_id)
    if cred is None:
        raise not_found("credential", credential_id)
    return cred


async def list_credentials(session: AsyncSession, filters: dict[str, Any]) -> list[Credential]:
    query = select(Credential)
    for field in ("user_id", "type"):
        if filters.get(field) is not None:
            query = query.where(getattr(Credential, field) == filters[field])
    return list((await session.scalars(query.order_by(Credential.user_id,
                                                      Credential.id))).all())


async def create(session: AsyncSession, svc: IdentityService, data: dict[str, Any]) -> Credential:
    if data["type"].lower() == EC2:
        if not data.get("project_id"):
            raise BadRequest("Invalid input for field 'credential': 'project_id' is a required "
                             "property for a credential of type ec2.")
        cred_id = hash_access_key(str(ec2_blob(data["blob"])["access"]))
    else:
        cred_id = new_id()
    if await session.get(Credential, cred_id) is not None:
        raise Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, "
                       f"{cred_id}.")
    cred = Credential(id=cred_id, user_id=data["user_id"], project_id=data.get("project_id"),
                      type=data["type"], blob=data["blob"],
                      extra={k: v for k, v in data.items() if k not in CORE})
    session.add(cred)
    await session.flush()
    await svc.notify("identity.credential.created", cred.id)
    return cred


async def update(session: AsyncSession, svc: IdentityService, cred: Credential,
                 data: dict[str, Any]) -> None:
    if "id" in data and data["id"] != cred.id:
        raise BadRequest("Cannot change ID")
    new_type = data.get("type", cred.type)
    if new_type.lower() == EC2 and ("blob" in data or cred.type.lower() != EC2):
        new_blob = ec2_blob(data.get("blob", cred.blob))
        if cred.type.lower() == EC2:
            try:
                old_blob = json.loads(cred.blob)
            except ValueError:
                old_blob = {}
            for key in FIXED_BLOB_KEYS:
                if old_blob.get(key) != new_blob.get(key):
                    raise BadRequest(f"{key} can not be updated for credential")
        if not data.get("project_id", cred.project_id):
            raise BadRequest("Invalid input for field 'credential': 'project_id' is a required "
                             "property for a credential of type ec2.")
    for field in ("user_id", "project_id", "type", "blob"):
        if field in data:
            setattr(cred, field, data[field])
    extra = {k: v for k, v in data.items() if k not in CORE}
    if extra:
        cred.extra = {**(cred.extra or {}), **extra}
    await svc.notify("identity.credential.updated", cred.id)


async def delete(session: AsyncSession, svc: IdentityService, cred: Credential) -> None:
    await session.delete(cred)
    await session.flush()
    await svc.notify("identity.credential.deleted", cred.id)


# -- OS-EC2 --------------------------------------------------------------------------------------
def render_ec2(cred: Credential, base: str) -> dict[str, Any]:
    try:
        blob = json.loads(cred.blob)
    except ValueError:
        blob = {}
    blob = blob if isinstance(blob, dict) else {}
    access = blob.get("access")
    return {"user_id": cred.user_id, "tenant_id": cred.project_id, "access": access,
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"),
            "links": {"self": f"{base}/v3/users/{cred.user_id}/credentials/OS-EC2/{access}"}}


async def create_ec2(session: AsyncSession, svc: IdentityService, user_id: str,
                     project_id: str, trust_id: str | None = None) -> Credential:
    access = secrets.token_hex(16)
    blob = {"access": access, "secret": secrets.token_hex(16), "trust_id": trust_id}
    return await create(session, svc, {"user_id": user_id, "project_id": project_id,
                                       "type": EC2, "blob": json.dumps(blob)})


async def get_ec2(session: AsyncSession, user_id: str, access: str) -> Credential:
    """The user's EC2 credential with this access key (Keystone answers 401 for a credential
    of another type)."""
    cred = await get(session, hash_access_key(access))
    if cred.type != EC2:
        raise Unauthorized("EC2 access key not found.")
    if cred.user_id != user_id:
        raise not_found("credential", hash_access_key(access))
    return cred


async def list_ec2(session: AsyncSession, user_id: str) -> list[Credential]:
    return await list_credentials(session, {"user_id": user_id, "type": EC2})

"""Keypairs: per user, imported (ssh public key or x509 certificate) or generated."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.common.timeutils import utcnow
from nimbus.compute import quotas
from nimbus.compute.errors import QuotaExceeded
from nimbus.compute.models import KeyPair
from nimbus.web.errors import BadRequest, Conflict, NotFound


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i:i + 2] for i in range(0, len(hexdigest), 2))


def ssh_fingerprint(public_key: str) -> str:
    try:
        serialization.load_ssh_public_key(public_key.strip().encode())
        blob = base64.b64decode(public_key.split()[1])
    except (ValueError, IndexError, binascii.Error, TypeError):
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError):
        raise BadRequest("Keypair data is invalid: failed to generate X509 fingerprint. "
                         "Error message: the certificate could not be loaded") from None
    return _colons(binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode())


def generate_ssh() -> tuple[str, str, str]:
    """(private key PEM, public key line, fingerprint)"""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    public = f"{public} Generated-by-Nova"
    return private, public, ssh_fingerprint(public)


def generate_x509(user_id: str) -> tuple[str, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = cert.public_bytes(serialization.Encoding.PEM).decode()
    return private, public, x509_fingerprint(public)


async def get(session: AsyncSession, user_id: str, name: str) -> KeyPair:
    row = (await session.scalars(select(KeyPair).where(
        KeyPair.user_id == user_id, KeyPair.name == name))).first()
    if row is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return row


async def create(session: AsyncSession, *, user_id: str, project_id: str | None, name: str,
                 kind: str, public_key: str | None) -> tuple[KeyPair, str | None]:
    if project_id is not None:
        limit = (await quotas.limits(session, project_id, user_id))["key_pairs"]
        count = int(await session.scalar(select(func.count()).select_from(KeyPair).where(
            KeyPair.user_id == user_id)) or 0)
        if limit >= 0 and count + 1 > limit:
            raise QuotaExceeded("Quota exceeded, too many key pairs.")
    private = None
    if public_key is None:
        private, public_key, fingerprint = generate_x509(user_id) if kind == "x509" \
            else generate_ssh()
    else:
        fingerprint = x509_fingerprint(public_key) if kind == "x509" \
            else ssh_fingerprint(public_key)
    if (await session.scalars(select(KeyPair.id).where(
            KeyPair.user_id == user_id, KeyPair.name == name))).first() is not None:
        raise Conflict(f"Key pair '{name}' already exists.")
    row = KeyPair(name=name, user_id=user_id, fingerprint=fingerprint, public_key=public_key,
                  type=kind, created_at=utcnow())
    session.add(row)
    await session.flush()
    return row, private


async def list_for(session: AsyncSession, user_id: str, limit: int,
                   marker: str | None) -> list[KeyPair]:
    query = select(KeyPair).where(KeyPair.user_id == user_id)
    if marker is not None:
        mark = (await session.scalars(select(KeyPair).where(
            KeyPair.user_id == user_id, KeyPair.name == marker))).first()
        if mark is None:
            raise BadRequest(f"marker [{marker}] not found")
        query = query.where(KeyPair.name > marker)
    return list((await session.scalars(query.order_by(KeyPair.name).limit(limit))).all())

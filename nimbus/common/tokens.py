"""Self-contained signed tokens, so every service validates them locally.

A token is ``<base64url msgpack payload>.<base64url Ed25519 signature>``. The payload carries the
user, scope and roles (implied roles expanded) at issue time; anything that would change them
(role removal, password change, deletion) records a revocation event, which every process applies
(see ``revocation.py``). Only identity holds private keys; other processes need the public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TOKEN_VERSION = 1


class InvalidToken(Exception):
    """The token is malformed, forged, expired or revoked; the message says which."""


@dataclass
class TokenData:
    user_id: str
    methods: list[str]
    issued_at: float
    expires_at: float
    audit_ids: list[str]
    user_name: str = ""
    user_domain_id: str = ""
    user_domain_name: str = ""
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    project_is_domain: bool = False
    domain_id: str | None = None
    domain_name: str | None = None
    system: str | None = None
    roles: list[list[str]] = field(default_factory=list)  # [[id, name], ...]
    app_cred_id: str | None = None
    app_cred_restricted: bool = True
    password_expires_at: float | None = None
    # Added for application credentials and trusts (optional, at the end: the order is the format).
    app_cred_name: str | None = None
    trust_id: str | None = None
    trustor_user_id: str | None = None
    trustee_user_id: str | None = None
    trust_impersonation: bool = False

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]

    @property
    def role_names(self) -> list[str]:
        return [name for _, name in self.roles]

    @property
    def scoped(self) -> bool:
        return bool(self.project_id or self.domain_id or self.system)


_FIELDS = [f for f in TokenData.__dataclass_fields__]


def _compact(value: Any) -> Any:
    """32-hex ids travel as 16 raw bytes: tokens stay short."""
    if isinstance(value, str) and len(value) == 32:
        try:
            return bytes.fromhex(value)
        except ValueError:
            return value
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _expand(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _pack(fields: dict[str, Any]) -> list[Any]:
    """Positional, in dataclass order (the token version pins the order)."""
    return [_compact(fields[name]) for name in _FIELDS]


def _unpack(values: list[Any]) -> dict[str, Any]:
    return {name: _expand(v) for name, v in zip(_FIELDS, values, strict=True)}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:12]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_pem(text: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(text.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("token keys must be Ed25519")
    return key


class KeyRing:
    """Signing keys kept in a folder: ``<n>.key`` PEM files; the highest n signs.

    Rotation adds a new key and keeps the newest ``max_active`` ones, so tokens signed by a
    recent key keep validating while they live.
    """

    def __init__(self, directory: Path, max_active: int = 3) -> None:
        self.directory = directory
        self.max_active = max_active
        self.private: dict[str, Ed25519PrivateKey] = {}
        self.primary_id = ""
        self.load()

    def _files(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.glob("*.key"):
            if p.stem.isdigit():
                found.append((int(p.stem), p))
        return sorted(found)

    def load(self) -> None:
        files = self._files()
        if not files:
            self.rotate()
            return
        self.private = {}
        for _, path in files:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path}: not an Ed25519 key")
            kid = key_id(key.public_key())
            self.private[kid] = key
            self.primary_id = kid  # files are sorted: the last one is the primary

    def rotate(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = self._files()
        index = files[-1][0] + 1 if files else 0
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = self.directory / f"{index}.key"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        tmp.rename(path)
        for _, old in self._files()[: -self.max_active]:
            old.unlink()
        self.load()
        return self.primary_id

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {kid: k.public_key() for kid, k in self.private.items()}

    def sign(self, data: TokenData) -> str:
        body = msgpack.packb([TOKEN_VERSION, self.primary_id, *_pack(asdict(data))])
        signature = self.private[self.primary_id].sign(body)
        return f"{_b64(body)}.{_b64(signature)}"


class TokenVerifier:
    """Checks signatures and expiry, with a bounded cache of already verified tokens."""

    def __init__(self, public_keys: dict[str, Ed25519PublicKey], cache_size: int = 20000) -> None:
        self.public_keys = dict(public_keys)
        self._cache: OrderedDict[str, TokenData] = OrderedDict()
        self._cache_size = cache_size

    def set_keys(self, public_keys: dict[str, Ed25519PublicKey]) -> None:
        self.public_keys = dict(public_keys)
        self._cache.clear()

    def verify(self, token: str, *, now: float | None = None) -> TokenData:
        now = time.time() if now is None else now
        data = self._cache.get(token)
        if data is None:
            data = self._verify_signature(token)
            self._cache[token] = data
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if data.expires_at <= now:
            raise InvalidToken("The token has expired.")
        return data

    def _verify_signature(self, token: str) -> TokenData:
        body_text, dot, sig_text = token.partition(".")
        if not dot or len(token) > 8192:
            raise InvalidToken("The token is malformed.")
        try:
            body = _unb64(body_text)
            signature = _unb64(sig_text)
            payload: Any = msgpack.unpackb(body)
        except (ValueError, binascii.Error, msgpack.UnpackException):
            raise InvalidToken("The token is malformed.") from None
        if not isinstance(payload, list) or len(payload) != 2 + len(_FIELDS) or \
                payload[0] != TOKEN_VERSION:
            raise InvalidToken("The token is malformed.")
        public = self.public_keys.get(str(payload[1]))
        if public is None:
            raise InvalidToken("The token was signed by an unknown key.")
        try:
            public.verify(signature, body)
        except InvalidSignature:
            raise InvalidToken("The token signature is invalid.") from None
        try:
            return TokenData(**_unpack(payload[2:]))
        except (TypeError, ValueError):
            raise InvalidToken("The token is malformed.") from None

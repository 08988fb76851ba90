"""Token signing, verification, expiry, key rotation and revocation matching."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nimbus.common.revocation import RevocationEvent, RevocationList
from nimbus.common.tokens import InvalidToken, KeyRing, TokenData, TokenVerifier

USER = "a" * 32
PROJECT = "b" * 32


def token_data(**kw: object) -> TokenData:
    now = time.time()
    fields: dict = dict(user_id=USER, methods=["password"], issued_at=now,
                        expires_at=now + 3600, audit_ids=["audit1"], project_id=PROJECT,
                        roles=[["c" * 32, "member"], ["d" * 32, "reader"]])
    fields.update(kw)
    return TokenData(**fields)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    data = token_data(user_name="alice", system=None, password_expires_at=None)
    token = ring.sign(data)
    assert len(token) < 400
    assert TokenVerifier(ring.public_keys()).verify(token) == data


def test_tampered_expired_and_unknown_key_tokens_fail(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "a")
    verifier = TokenVerifier(ring.public_keys())
    token = ring.sign(token_data())
    body, sig = token.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + sig
    with pytest.raises(InvalidToken):
        verifier.verify(forged)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(ring.sign(token_data(expires_at=time.time() - 1)))
    other = KeyRing(tmp_path / "b")
    with pytest.raises(InvalidToken, match="unknown key"):
        TokenVerifier(other.public_keys()).verify(token)
    with pytest.raises(InvalidToken, match="malformed"):
        verifier.verify("not-a-token")


def test_rotation_keeps_recent_keys_valid(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path, max_active=2)
    old = ring.sign(token_data())
    ring.rotate()
    assert TokenVerifier(ring.public_keys()).verify(old).user_id == USER
    ring.rotate()  # the key that signed `old` is now dropped
    with pytest.raises(InvalidToken):
        TokenVerifier(ring.public_keys()).verify(old)
    assert len(list(tmp_path.glob("*.key"))) == 2
    assert KeyRing(tmp_path).primary_id == ring.primary_id  # reloads from disk


def test_revocation_matches_by_fields_and_time() -> None:
    data = token_data()
    later = time.time() + 10
    revoked = RevocationList()
    assert not revoked.is_revoked(data)
    revoked.add(RevocationEvent(issued_before=data.issued_at - 1, revoked_at=later,
                                user_id=USER))
    assert not revoked.is_revoked(data)  # the token came after the event
    revoked.add(RevocationEvent(issued_before=later, revoked_at=later, user_id="x" * 32))
    assert not revoked.is_revoked(data)
    revoked.add(RevocationEvent(issued_before=later, revoked_at=later, user_id=USER,
                                project_id=PROJECT))
    assert revoked.is_revoked(data)


@pytest.mark.parametrize("field,value", [("audit_id", "audit1"), ("project_id", PROJECT),
                                         ("role_id", "c" * 32)])
def test_each_revocation_field(field: str, value: str) -> None:
    revoked = RevocationList()
    revoked.add(RevocationEvent(issued_before=time.time() + 1, revoked_at=time.time(),
                                **{field: value}))
    assert revoked.is_revoked(token_data())

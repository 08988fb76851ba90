"""Keypairs: generated and imported, per user, paging, admin on behalf of users."""

from __future__ import annotations

import base64
import hashlib
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.compute.conftest import Api, Tenant, fault


def public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + " test@nimbus"


def md5_fingerprint(line: str) -> str:
    digest = hashlib.md5(base64.b64decode(line.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def test_generate_and_import(alice: Tenant) -> None:
    name = f"kp-{uuid.uuid4().hex[:6]}"
    generated = alice.api.post("/os-keypairs", {"keypair": {"name": name}})
    assert generated.status_code == 200, generated.text  # 200 before 2.2
    body = generated.json()["keypair"]
    assert body["private_key"].startswith("-----BEGIN")
    assert body["public_key"].startswith("ssh-rsa ")
    assert body["fingerprint"] == md5_fingerprint(body["public_key"])
    assert body["user_id"] == alice.api.user_id
    line = public_key()
    imported = alice.api.post("/os-keypairs", {"keypair": {"name": name + "-i",
                                                           "public_key": line}}, mv="2.2")
    assert imported.status_code == 201
    assert "private_key" not in imported.json()["keypair"]
    assert imported.json()["keypair"]["type"] == "ssh"
    shown = alice.api.get(f"/os-keypairs/{name}-i", mv="2.2").json()["keypair"]
    assert shown["public_key"] == line and shown["fingerprint"] == md5_fingerprint(line)
    assert shown["deleted"] is False and isinstance(shown["id"], int)
    names = [k["keypair"]["name"] for k in alice.api.get("/os-keypairs").json()["keypairs"]]
    assert {name, name + "-i"} <= set(names)
    dup = alice.api.post("/os-keypairs", {"keypair": {"name": name, "public_key": line}})
    assert dup.status_code == 409
    assert fault(dup)[1]["message"] == f"Key pair '{name}' already exists."
    assert alice.api.delete(f"/os-keypairs/{name}").status_code == 202
    assert alice.api.delete(f"/os-keypairs/{name}-i", mv="2.2").status_code == 204
    assert alice.api.get(f"/os-keypairs/{name}").status_code == 404


def test_keypairs_belong_to_their_user(alice: Tenant, bob: Tenant, api: Api) -> None:
    name = f"mine-{uuid.uuid4().hex[:6]}"
    alice.api.post("/os-keypairs", {"keypair": {"name": name, "public_key": public_key()}})
    assert bob.api.get(f"/os-keypairs/{name}").status_code == 404
    assert name not in [k["keypair"]["name"] for k in bob.api.get("/os-keypairs").json()[
        "keypairs"]]
    # Admins act for others from 2.10 on; users may not.
    as_admin = api.get(f"/os-keypairs/{name}", params={"user_id": alice.api.user_id},
                       mv="2.10")
    assert as_admin.status_code == 200
    assert bob.api.get(f"/os-keypairs/{name}", params={"user_id": alice.api.user_id},
                       mv="2.10").status_code == 403
    made = api.post("/os-keypairs", {"keypair": {"name": "for-bob", "user_id": bob.api.user_id,
                                                 "public_key": public_key()}}, mv="2.10")
    assert made.status_code == 201 and made.json()["keypair"]["user_id"] == bob.api.user_id
    assert bob.api.get("/os-keypairs/for-bob").status_code == 200
    alice.api.delete(f"/os-keypairs/{name}")
    bob.api.delete("/os-keypairs/for-bob")


def test_bad_keypairs_and_newer_rules(alice: Tenant) -> None:
    for body in ({"keypair": {"name": "bad/name"}}, {"keypair": {}},
                 {"keypair": {"name": "x", "public_key": "ssh-rsa not-a-key"}},
                 {"keypair": {"name": "x", "type": "pgp"}}):
        resp = alice.api.post("/os-keypairs", body, mv="2.2")
        assert resp.status_code == 400, (body, resp.text)
    # 2.92: no more generation, and '@' and '.' are allowed in names.
    assert alice.api.post("/os-keypairs", {"keypair": {"name": "gen"}},
                          mv="2.92").status_code == 400
    ok = alice.api.post("/os-keypairs", {"keypair": {"name": "me@host.x",
                                                     "public_key": public_key()}}, mv="2.92")
    assert ok.status_code == 201, ok.text
    assert alice.api.post("/os-keypairs", {"keypair": {"name": "me@host.y",
                                                       "public_key": public_key()}},
                          mv="2.91").status_code == 400
    alice.api.delete("/os-keypairs/me@host.x")


def test_paging(alice: Tenant) -> None:
    names = sorted(f"pg-{i}-{uuid.uuid4().hex[:4]}" for i in range(3))
    for n in names:
        alice.api.post("/os-keypairs", {"keypair": {"name": n, "public_key": public_key()}})
    page = alice.api.get("/os-keypairs", params={"limit": 2}, mv="2.35").json()
    assert len(page["keypairs"]) == 2
    marker = page["keypairs"][-1]["keypair"]["name"]
    rest = alice.api.get("/os-keypairs", params={"marker": marker}, mv="2.35").json()
    got = [k["keypair"]["name"] for k in page["keypairs"] + rest["keypairs"]]
    assert got == sorted(got) and set(names) <= set(got)
    for n in names:
        alice.api.delete(f"/os-keypairs/{n}")

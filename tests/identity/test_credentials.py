"""Credentials (/v3/credentials) and EC2 credentials (/v3/users/{u}/credentials/OS-EC2)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nimbus.common.ids import new_id
from nimbus.identity.models import GLOBAL_ROLE, USER_PROJECT, Assignment, Role, User
from tests.support.cloud import RunningCloud


def make_user(cloud: RunningCloud, admin: Any, name: str, role: str = "member") -> dict[str, str]:
    """A user named `name` (password 'pw-<name>') with `role` on a new project also named
    `name`. Made straight in the database, so these tests need only the APIs they test."""
    project = admin.identity.create_project(name=name, domain_id="default")

    async def create(c: Any) -> str:
        svc = c.services["identity"]
        password_hash = await svc.hasher.hash(f"pw-{name}")
        user_id = new_id()
        async with svc.db.transaction() as session:
            role_id = await session.scalar(select(Role.id).where(
                Role.name == role, Role.domain_id == GLOBAL_ROLE))
            session.add(User(id=user_id, name=name, domain_id="default", enabled=True,
                             password_hash=password_hash, extra={}, options={}))
            session.add(Assignment(type=USER_PROJECT, actor_id=user_id, target_id=project.id,
                                   role_id=role_id, inherited=False))
        return user_id

    return {"user_id": cloud.call(create), "project_id": project.id, "name": name}


def base(api: httpx.Client) -> str:
    return str(api.base_url).rstrip("/")


@pytest.fixture(scope="module")
def api(cloud: RunningCloud) -> Iterator[httpx.Client]:
    token = cloud.connect().auth_token or ""
    with httpx.Client(base_url=cloud.auth_url, headers={"X-Auth-Token": token},
                      timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def member(cloud: RunningCloud, admin: Any) -> Iterator[dict[str, Any]]:
    """A plain project member, with an httpx client carrying their token."""
    import uuid

    name = f"t-{uuid.uuid4().hex[:10]}"
    user = make_user(cloud, admin, name)
    token = cloud.connect(user=name, password=f"pw-{name}", project=name).auth_token or ""
    with httpx.Client(base_url=cloud.auth_url, headers={"X-Auth-Token": token},
                      timeout=30) as client:
        yield {**user, "client": client}


def ec2_blob(access: str, secret: str = "s") -> str:
    return json.dumps({"access": access, "secret": secret})


# -- /v3/credentials ---------------------------------------------------------------------------
def test_credential_crud(api: httpx.Client, member: dict[str, Any], name: str) -> None:
    created = api.post("/credentials", json={"credential": {
        "user_id": member["user_id"], "project_id": member["project_id"], "type": "ec2",
        "blob": ec2_blob(name)}})
    assert created.status_code == 201, created.text
    cred = created.json()["credential"]
    # EC2 credentials are keyed by the SHA-256 of their access key, as in Keystone.
    assert cred["id"] == hashlib.sha256(name.encode()).hexdigest()
    assert cred == {"id": cred["id"], "user_id": member["user_id"],
                    "project_id": member["project_id"], "type": "ec2",
                    "blob": ec2_blob(name),
                    "links": {"self": f"{base(api)}/credentials/{cred['id']}"}}
    assert api.post("/credentials", json={"credential": {
        "user_id": member["user_id"], "project_id": member["project_id"], "type": "ec2",
        "blob": ec2_blob(name)}}).status_code == 409

    updated = api.patch(f"/credentials/{cred['id']}", json={"credential": {
        "blob": ec2_blob(f"{name}-new", "s2"), "project_id": None, "type": "ec2"}})
    assert updated.status_code == 400  # ec2 needs a project
    updated = api.patch(f"/credentials/{cred['id']}", json={"credential": {
        "blob": ec2_blob(f"{name}-new", "s2"), "note": "kept"}})
    assert updated.status_code == 200
    body = updated.json()["credential"]
    assert body["id"] == cred["id"] and json.loads(body["blob"])["secret"] == "s2"
    assert body["note"] == "kept"
    assert api.get(f"/credentials/{cred['id']}").json()["credential"] == body
    fixed = api.patch(f"/credentials/{cred['id']}", json={"credential": {
        "blob": json.dumps({"access": "a", "trust_id": "t"})}})
    assert fixed.status_code == 400 and "trust_id" in fixed.json()["error"]["message"]

    other = api.post("/credentials", json={"credential": {
        "user_id": member["user_id"], "type": "cert", "blob": "-----BEGIN-----"}}
        ).json()["credential"]
    assert len(other["id"]) == 32 and other["project_id"] is None
    mine = api.get("/credentials", params={"user_id": member["user_id"]}).json()["credentials"]
    assert {c["id"] for c in mine} == {cred["id"], other["id"]}
    certs = api.get("/credentials", params={"user_id": member["user_id"], "type": "cert"})
    assert [c["id"] for c in certs.json()["credentials"]] == [other["id"]]

    for cid in (cred["id"], other["id"]):
        assert api.delete(f"/credentials/{cid}").status_code == 204
        assert api.get(f"/credentials/{cid}").status_code == 404


@pytest.mark.parametrize("fields", [
    {"type": "ec2", "blob": ec2_blob("x")},                                   # no project
    {"type": "ec2", "blob": "not json", "project_id": "p"},
    {"type": "ec2", "blob": json.dumps({"secret": "s"}), "project_id": "p"},  # no access
    {"type": "ec2", "blob": "[1]", "project_id": "p"},
    {"blob": "x"},                                                            # no type
    {"type": "cert"},                                                         # no blob
    {"type": "cert", "blob": {"a": 1}},                                       # blob is a string
])
def test_credential_validation(api: httpx.Client, fields: dict[str, Any]) -> None:
    body = {"credential": {"user_id": "u", **fields}}
    resp = api.post("/credentials", json=body)
    assert resp.status_code == 400, resp.text


def test_users_manage_only_their_own_credentials(api: httpx.Client, admin: Any,
                                                 member: dict[str, Any], name: str) -> None:
    me = member["client"]
    own = me.post("/credentials", json={"credential": {
        "user_id": member["user_id"], "type": "totp", "blob": "secret"}})
    assert own.status_code == 201
    admin_id = admin.current_user_id
    theirs = api.post("/credentials", json={"credential": {
        "user_id": admin_id, "type": "cert", "blob": name}}).json()["credential"]
    assert me.post("/credentials", json={"credential": {
        "user_id": admin_id, "type": "cert", "blob": "x"}}).status_code == 403
    assert {c["id"] for c in me.get("/credentials").json()["credentials"]} == {
        own.json()["credential"]["id"]}
    assert me.get(f"/credentials/{theirs['id']}").status_code == 403
    assert me.get("/credentials/nope").status_code == 403  # existence does not leak
    assert me.patch(f"/credentials/{theirs['id']}", json={"credential": {"blob": "y"}}
                    ).status_code == 403
    # Nor may a user give their credential away.
    cid = own.json()["credential"]["id"]
    assert me.patch(f"/credentials/{cid}", json={"credential": {"user_id": admin_id}}
                    ).status_code == 403
    assert me.delete(f"/credentials/{theirs['id']}").status_code == 403
    assert me.delete(f"/credentials/{cid}").status_code == 204
    assert theirs["id"] in {c["id"] for c in api.get("/credentials").json()["credentials"]}
    api.delete(f"/credentials/{theirs['id']}")


# -- OS-EC2 ------------------------------------------------------------------------------------
def test_ec2_credentials_as_their_owner(api: httpx.Client, admin: Any,
                                        member: dict[str, Any]) -> None:
    me, uid, pid = member["client"], member["user_id"], member["project_id"]
    path = f"/users/{uid}/credentials/OS-EC2"
    created = me.post(path, json={"tenant_id": pid})
    assert created.status_code == 201, created.text
    cred = created.json()["credential"]
    assert set(cred) == {"user_id", "tenant_id", "access", "secret", "trust_id", "links"}
    assert (cred["user_id"], cred["tenant_id"], cred["trust_id"]) == (uid, pid, None)
    assert cred["access"] and cred["secret"]
    assert cred["links"]["self"] == f"{base(api)}{path}/{cred['access']}"
    second = me.post(path, json={"tenant_id": pid}).json()["credential"]

    listed = me.get(path).json()["credentials"]
    assert {c["access"] for c in listed} == {cred["access"], second["access"]}
    assert me.get(f"{path}/{cred['access']}").json()["credential"] == cred
    # The same credential, seen through /v3/credentials.
    raw = me.get(f"/credentials/{hashlib.sha256(cred['access'].encode()).hexdigest()}")
    assert raw.json()["credential"]["type"] == "ec2"

    assert me.post(path, json={}).status_code == 400
    assert me.post(path, json={"tenant_id": "nope"}).status_code == 404
    assert api.post("/users/nope/credentials/OS-EC2", json={"tenant_id": pid}
                    ).status_code == 404
    admin_id = admin.current_user_id
    assert me.post(f"/users/{admin_id}/credentials/OS-EC2", json={"tenant_id": pid}
                   ).status_code == 403
    assert me.get(f"/users/{admin_id}/credentials/OS-EC2").status_code == 403

    for access in (cred["access"], second["access"]):
        assert me.delete(f"{path}/{access}").status_code == 204
    assert me.get(f"{path}/{cred['access']}").status_code == 404
    assert me.delete(f"{path}/{cred['access']}").status_code == 404
    assert me.get(path).json()["credentials"] == []


def test_ec2_lookup_of_a_non_ec2_credential_is_401(api: httpx.Client,
                                                   member: dict[str, Any]) -> None:
    uid, access = member["user_id"], new_id()
    cred = api.post("/credentials", json={"credential": {
        "user_id": uid, "type": "ec2", "project_id": member["project_id"],
        "blob": ec2_blob(access)}}).json()["credential"]
    shown = api.get(f"/users/{uid}/credentials/OS-EC2/{access}")
    assert shown.status_code == 200 and shown.json()["credential"]["access"] == access
    # Keystone answers 401 when the access key names a credential of another type.
    api.patch(f"/credentials/{cred['id']}", json={"credential": {"type": "cert"}})
    refused = api.get(f"/users/{uid}/credentials/OS-EC2/{access}")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "EC2 access key not found."
    assert api.delete(f"/credentials/{cred['id']}").status_code == 204


def test_application_credential_tokens_are_held_to_their_scope(
        cloud: RunningCloud, member: dict[str, Any], name: str) -> None:
    """A restricted application credential may not mint EC2 keys, and a token from one sees
    only credentials of its own project (as Keystone guards delegated tokens)."""
    me, uid, pid = member["client"], member["user_id"], member["project_id"]
    other = me.post("/credentials", json={"credential": {
        "user_id": uid, "type": "totp", "blob": "seed"}}).json()["credential"]
    own = me.post("/credentials", json={"credential": {
        "user_id": uid, "type": "cert", "blob": "x", "project_id": pid}}).json()["credential"]
    tokens = {}
    for unrestricted in (False, True):
        made = me.post(f"/users/{uid}/application_credentials", json={
            "application_credential": {"name": f"{name}-{unrestricted}",
                                       "unrestricted": unrestricted}})
        assert made.status_code == 201, made.text
        app = made.json()["application_credential"]
        issued = httpx.post(f"{cloud.auth_url}/auth/tokens", json={"auth": {"identity": {
            "methods": ["application_credential"],
            "application_credential": {"id": app["id"], "secret": app["secret"]}}}})
        assert issued.status_code == 201, issued.text
        tokens[unrestricted] = {"X-Auth-Token": issued.headers["X-Subject-Token"]}
    path = f"{cloud.auth_url}/users/{uid}/credentials/OS-EC2"
    assert httpx.post(path, json={"tenant_id": pid}, headers=tokens[False]).status_code == 403
    made = httpx.post(path, json={"tenant_id": pid}, headers=tokens[True])
    assert made.status_code == 201
    listed = httpx.get(f"{cloud.auth_url}/credentials", headers=tokens[False]).json()
    ids = {c["id"] for c in listed["credentials"]}
    assert own["id"] in ids and other["id"] not in ids
    assert httpx.get(f"{cloud.auth_url}/credentials/{other['id']}",
                     headers=tokens[False]).status_code == 403
    me.delete(f"{path}/{made.json()['credential']['access']}")
    for cred in (own, other):
        me.delete(f"/credentials/{cred['id']}")


# -- the unmodified CLI ------------------------------------------------------------------------
def test_cli_credentials_and_ec2(cloud: RunningCloud, member: dict[str, Any]) -> None:
    name = member["name"]
    as_member = {"user": name, "password": f"pw-{name}", "project": name}

    def parallel(*calls: tuple[str, ...]) -> list[Any]:
        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(lambda args: cloud.cli(*args, **as_member), calls))

    cred, ec2 = parallel(
        ("credential", "create", "--type", "totp", "-f", "json", member["user_id"], "seed"),
        ("ec2", "credentials", "create", "-f", "json"))
    assert cred["type"] == "totp" and cred["user_id"] == member["user_id"]
    assert ec2["project_id"] == member["project_id"] and ec2["access"] and ec2["secret"]

    creds, ec2s = parallel(("credential", "list", "-f", "json"),
                           ("ec2", "credentials", "list", "-f", "json"))
    assert cred["id"] in {c["ID"] for c in creds}
    assert [c["Access"] for c in ec2s] == [ec2["access"]]

    parallel(("credential", "delete", cred["id"]),
             ("ec2", "credentials", "delete", ec2["access"]))
    creds, ec2s = parallel(("credential", "list", "-f", "json"),
                           ("ec2", "credentials", "list", "-f", "json"))
    assert cred["id"] not in {c["ID"] for c in creds}
    assert ec2["access"] not in {c["Access"] for c in ec2s}

"""Trusts (OS-TRUST) and trust-scoped tokens, through raw HTTP, openstacksdk and the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.identity.test_application_credentials import (
    PASSWORD,
    admin_token,
    app_cred,
    call,
    create_cred,
    expire_in_db,
    grant,
    issue,
    make_project,
    make_user,
    member_of_new_project,
    password,
    revoke_grant,
    role_id,
    user_token,
)
from tests.support.cloud import RunningCloud


class Setup:
    """Tempest's TrustsV3TestJSON setup: a trustor holding a role to delegate and one not to,
    on a new project, and a trustee with no roles there."""

    def __init__(self, cloud: RunningCloud, name: str) -> None:
        self.cloud = cloud
        self.name = name
        self.project = make_project(cloud, name)
        self.trustor = make_user(cloud, f"{name}-trustor")
        self.trustee = make_user(cloud, f"{name}-trustee")
        self.delegated_name = f"{name}-Delegated"
        self.delegated = role_id(cloud, self.delegated_name, create=True)
        self.kept = role_id(cloud, f"{name}-NotDelegated", create=True)
        for role in (self.delegated, self.kept):
            grant(cloud, self.trustor, self.project, role)
        self.trustor_token = user_token(cloud, self.trustor, self.project)
        self.trustee_token = user_token(cloud, self.trustee)

    def create(self, token: str | None = None, **fields: Any) -> httpx.Response:
        body = {"trustor_user_id": self.trustor, "trustee_user_id": self.trustee,
                "project_id": self.project, "impersonation": True,
                "roles": [{"name": self.delegated_name}], **fields}
        return call(self.cloud, "POST", "/OS-TRUST/trusts", token or self.trustor_token,
                    json={"trust": body})

    def trust_token(self, trust_id: str, user: str | None = None) -> httpx.Response:
        return issue(self.cloud, password(user or self.trustee),
                     {"OS-TRUST:trust": {"id": trust_id}})


def test_impersonating_trust_lifecycle(cloud: RunningCloud, name: str) -> None:
    s = Setup(cloud, name)
    expires = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0, tzinfo=None)
    expires_str = expires.isoformat() + "Z"
    resp = s.create(expires_at=expires_str)
    assert resp.status_code == 201, resp.text
    trust = resp.json()["trust"]
    tid = trust["id"]
    for shown in (trust, call(cloud, "GET", f"/OS-TRUST/trusts/{tid}",
                              s.trustor_token).json()["trust"]):
        assert shown["impersonation"] is True
        assert re.sub(r"\.([0-9]){6}", "", shown["expires_at"]) == expires_str
        assert (shown["trustor_user_id"], shown["trustee_user_id"], shown["project_id"]) == \
            (s.trustor, s.trustee, s.project)
        assert "v3/OS-TRUST/trusts" in shown["links"]["self"]
        assert [r["name"] for r in shown["roles"]] == [s.delegated_name]
        assert shown["remaining_uses"] is None

    # Its delegated roles, as the trustor and the trustee see them; others are not found.
    for token in (s.trustor_token, s.trustee_token):
        roles = call(cloud, "GET", f"/OS-TRUST/trusts/{tid}/roles", token).json()["roles"]
        assert [r["id"] for r in roles] == [s.delegated]
        assert f"v3/roles/{s.delegated}" in roles[0]["links"]["self"]
    one = call(cloud, "GET", f"/OS-TRUST/trusts/{tid}/roles/{s.delegated}", s.trustor_token)
    assert one.status_code == 200 and one.json()["role"]["name"] == s.delegated_name
    assert call(cloud, "HEAD", f"/OS-TRUST/trusts/{tid}/roles/{s.delegated}",
                s.trustor_token).status_code == 200
    for method in ("GET", "HEAD"):
        assert call(cloud, method, f"/OS-TRUST/trusts/{tid}/roles/{s.kept}",
                    s.trustor_token).status_code == 404

    # Lists: by trustor, by trustee, everything for an admin; summaries without roles.
    mine = call(cloud, "GET", "/OS-TRUST/trusts", s.trustor_token,
                params={"trustor_user_id": s.trustor}).json()["trusts"]
    assert [t["id"] for t in mine] == [tid] and "roles" not in mine[0]
    theirs = call(cloud, "GET", "/OS-TRUST/trusts/", s.trustee_token,
                  params={"trustee_user_id": s.trustee})
    assert [t["id"] for t in theirs.json()["trusts"]] == [tid]
    assert call(cloud, "GET", "/OS-TRUST/trusts", s.trustee_token,
                params={"trustor_user_id": s.trustor}).status_code == 403
    assert [t["id"] for t in call(cloud, "GET", "/OS-TRUST/trusts",
                                  s.trustee_token).json()["trusts"]] == [tid]
    everything = call(cloud, "GET", "/OS-TRUST/trusts", admin_token(cloud)).json()["trusts"]
    assert tid in {t["id"] for t in everything}

    # The trustee's token through the trust is the trustor's, with the delegated role only.
    resp = s.trust_token(tid)
    assert resp.status_code == 201, resp.text
    body = resp.json()["token"]
    assert body["user"]["id"] == s.trustor and body["project"]["id"] == s.project
    assert body["OS-TRUST:trust"] == {"id": tid, "impersonation": True,
                                      "trustor_user": {"id": s.trustor},
                                      "trustee_user": {"id": s.trustee}}
    assert [r["id"] for r in body["roles"]] == [s.delegated]
    assert body["expires_at"] <= expires_str.replace("Z", ".000000Z")
    trust_token = resp.headers["X-Subject-Token"]
    assert call(cloud, "GET", f"/projects/{s.project}", trust_token).status_code in (200, 403)
    # Also with the token method; never by someone other than the trustee.
    by_token = issue(cloud, {"token": {"id": s.trustee_token}}, {"OS-TRUST:trust": {"id": tid}})
    assert by_token.status_code == 201, by_token.text
    assert s.trust_token(tid, user=s.trustor).status_code == 403
    # A trust-scoped token makes no other token, credential, or trust.
    rescoped = issue(cloud, {"token": {"id": trust_token}}, {"project": {"id": s.project}})
    assert rescoped.status_code == 403
    assert create_cred(cloud, trust_token, s.trustor, name=name).status_code == 403

    # Only the trustor (or an admin) deletes it; that ends its tokens.
    assert call(cloud, "DELETE", f"/OS-TRUST/trusts/{tid}", s.trustee_token).status_code == 403
    assert call(cloud, "DELETE", f"/OS-TRUST/trusts/{tid}", s.trustor_token).status_code == 204
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{tid}", s.trustor_token).status_code == 404
    assert call(cloud, "GET", "/auth/tokens", admin_token(cloud),
                headers={"X-Subject-Token": trust_token}).status_code == 404
    assert call(cloud, "GET", "/auth/catalog", trust_token).status_code == 401
    assert s.trust_token(tid).status_code == 401
    assert call(cloud, "GET", "/OS-TRUST/trusts", s.trustor_token,
                params={"trustor_user_id": s.trustor}).json()["trusts"] == []


def test_without_impersonation_uses_and_expiry(cloud: RunningCloud, name: str) -> None:
    from nimbus.identity.models import Trust

    s = Setup(cloud, name)
    trust = s.create(impersonation=False, remaining_uses=2).json()["trust"]
    assert trust["impersonation"] is False and trust["remaining_uses"] == 2
    first = s.trust_token(trust["id"])
    assert first.status_code == 201
    assert first.json()["token"]["user"]["id"] == s.trustee
    assert s.trust_token(trust["id"]).status_code == 201
    assert s.trust_token(trust["id"]).status_code == 401  # no uses left
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{trust['id']}",
                s.trustor_token).status_code == 404

    expiring = s.create().json()["trust"]
    assert s.trust_token(expiring["id"]).status_code == 201
    expire_in_db(cloud, Trust, expiring["id"])
    assert s.trust_token(expiring["id"]).status_code == 401
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{expiring['id']}",
                s.trustee_token).status_code == 404


def test_trustor_losing_the_role_stops_the_trust(cloud: RunningCloud, name: str) -> None:
    s = Setup(cloud, name)
    trust = s.create().json()["trust"]
    assert s.trust_token(trust["id"]).status_code == 201
    revoke_grant(cloud, s.trustor, s.project, s.delegated)
    refused = s.trust_token(trust["id"])
    assert refused.status_code == 403, refused.text


@pytest.mark.parametrize("fields,status", [
    ({"expires_at": "bad.123Z"}, 400),
    ({"expires_at": "2001-02-03T04:05:06Z"}, 400),
    ({"remaining_uses": 0}, 400),
    ({"impersonation": "yes"}, 400),
    ({"roles": []}, 403),                     # a project needs at least one role
    ({"roles": [{"name": "admin"}]}, 404),    # a role the trustor does not hold
    ({"roles": [{"id": "f" * 32}]}, 404),
    ({"trustee_user_id": "f" * 32}, 404),
    ({"project_id": "f" * 32}, 404),
    ({"allow_redelegation": True, "redelegation_count": 9}, 403),
    ({"allow_redelegation": True, "remaining_uses": 3}, 400),
])
def test_create_is_validated(cloud: RunningCloud, name: str, fields: dict[str, Any],
                             status: int) -> None:
    s = Setup(cloud, name)
    resp = s.create(**fields)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == status


def test_only_the_trustor_creates_and_app_cred_tokens_cannot(cloud: RunningCloud,
                                                              name: str) -> None:
    s = Setup(cloud, name)
    missing = call(cloud, "POST", "/OS-TRUST/trusts", s.trustor_token, json={"trust": {
        "trustor_user_id": s.trustor, "trustee_user_id": s.trustee}})
    assert missing.status_code == 400 and "impersonation" in missing.json()["error"]["message"]
    assert s.create(token=s.trustee_token).status_code == 403
    assert s.create(token=admin_token(cloud)).status_code == 403
    for unrestricted in (False, True):
        cred = create_cred(cloud, s.trustor_token, s.trustor, name=f"{name}-{unrestricted}",
                           unrestricted=unrestricted).json()["application_credential"]
        cred_token = issue(cloud, app_cred(cred["id"], cred["secret"])).headers[
            "X-Subject-Token"]
        assert s.create(token=cred_token).status_code == 403
    trust = s.create().json()["trust"]
    outsider, _ = member_of_new_project(cloud, f"{name}-x")
    other = user_token(cloud, outsider)
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{trust['id']}", other).status_code == 403
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{trust['id']}/roles", other).status_code == 403
    assert call(cloud, "GET", "/OS-TRUST/trusts", other).json()["trusts"] == []
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{'f' * 32}", other).status_code == 404


def test_redelegation(cloud: RunningCloud, name: str) -> None:
    s = Setup(cloud, name)
    third = make_user(cloud, f"{name}-third")
    trust = s.create(impersonation=False, allow_redelegation=True).json()["trust"]
    assert trust["redelegation_count"] == 3 and trust["allow_redelegation"] is True
    trust_token = s.trust_token(trust["id"]).headers["X-Subject-Token"]
    # The trustee passes it on, from their trust-scoped token, as trustor of the new trust.
    resp = call(cloud, "POST", "/OS-TRUST/trusts", trust_token, json={"trust": {
        "trustor_user_id": s.trustee, "trustee_user_id": third, "project_id": s.project,
        "impersonation": False, "roles": [{"id": s.delegated}], "allow_redelegation": True}})
    assert resp.status_code == 201, resp.text
    child = resp.json()["trust"]
    assert child["redelegated_trust_id"] == trust["id"] and child["redelegation_count"] == 2
    third_token = s.trust_token(child["id"], user=third)
    assert third_token.status_code == 201, third_token.text
    assert [r["id"] for r in third_token.json()["token"]["roles"]] == [s.delegated]
    # Not more than was delegated: the kept role is not in the source trust.
    more = call(cloud, "POST", "/OS-TRUST/trusts", trust_token, json={"trust": {
        "trustor_user_id": s.trustee, "trustee_user_id": third, "project_id": s.project,
        "impersonation": False, "roles": [{"id": s.kept}]}})
    assert more.status_code in (403, 404)
    # Deleting the original takes the redelegated one (and its tokens) with it.
    assert call(cloud, "DELETE", f"/OS-TRUST/trusts/{trust['id']}",
                s.trustor_token).status_code == 204
    assert call(cloud, "GET", "/auth/catalog",
                third_token.headers["X-Subject-Token"]).status_code == 401
    assert s.trust_token(child["id"], user=third).status_code == 401


def test_sdk(cloud: RunningCloud, name: str) -> None:
    s = Setup(cloud, name)
    identity: Any = cloud.connect(user=f"{name}-trustor", password=PASSWORD,
                                  project=name).identity
    trust = identity.create_trust(trustor_user_id=s.trustor, trustee_user_id=s.trustee,
                                       project_id=s.project, impersonation=True,
                                       roles=[{"id": s.delegated}])
    assert trust.is_impersonation is True and trust.project_id == s.project
    assert identity.get_trust(trust.id).trustee_user_id == s.trustee
    assert [t.id for t in identity.trusts(trustor_user_id=s.trustor)] == [trust.id]
    identity.delete_trust(trust.id)
    assert list(identity.trusts(trustor_user_id=s.trustor)) == []


def test_cli(cloud: RunningCloud, name: str) -> None:
    s = Setup(cloud, name)
    as_trustor: dict[str, Any] = {"user": f"{name}-trustor", "password": PASSWORD,
                                  "project": name}
    made = cloud.cli("trust", "create", "--project", s.project, "--role", s.delegated_name,
                     "--impersonate", s.trustor, s.trustee, "-f", "json", **as_trustor)
    assert made["project_id"] == s.project and made["is_impersonation"] is True
    listed = cloud.cli("trust", "list", "-f", "json")  # as the admin: every trust
    assert made["id"] in {t["ID"] for t in listed}
    shown = cloud.cli("trust", "show", made["id"], "-f", "json", **as_trustor)
    assert shown["trustee_user_id"] == s.trustee
    cloud.cli("trust", "delete", made["id"], **as_trustor)
    assert call(cloud, "GET", f"/OS-TRUST/trusts/{made['id']}",
                s.trustor_token).status_code == 404


def test_needs_a_token(cloud: RunningCloud) -> None:
    assert call(cloud, "GET", "/OS-TRUST/trusts").status_code == 401
    assert call(cloud, "POST", "/OS-TRUST/trusts", json={"trust": {}}).status_code in (400, 401)

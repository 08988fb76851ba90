"""Inter-service clients: the service account, acting for a user, and error mapping."""

from __future__ import annotations

import httpx
import pytest

from nimbus.clients.base import RemoteApiError
from nimbus.clients.identity import IdentityClient
from nimbus.common.context import RequestContext
from tests.support.cloud import RunningCloud


def test_service_account_reads_projects(cloud: RunningCloud) -> None:
    async def lookup(c):  # type: ignore[no-untyped-def]
        client = c.clients.get(IdentityClient)
        names = {p["name"] for p in await client.projects()}
        admin = next(p for p in await client.projects(filters={"name": "admin"}))
        return names, await client.project(admin["id"]), await client.project("nope")

    names, admin, missing = cloud.call(lookup)
    assert {"admin", "service"} <= names
    assert admin["name"] == "admin"
    assert missing is None


def test_acting_for_a_user_uses_their_token_and_maps_errors(cloud: RunningCloud) -> None:
    async def as_bogus_user(c):  # type: ignore[no-untyped-def]
        ctx = RequestContext(request_id="req-x", auth_token="garbage.token")
        await c.clients.get(IdentityClient).projects(ctx=ctx)

    with pytest.raises(RemoteApiError) as err:
        cloud.call(as_bogus_user)
    assert err.value.status == 401
    assert err.value.service == "identity"


def test_service_user_exists_with_service_role(cloud: RunningCloud) -> None:
    token = cloud.call(lambda c: c.clients.token.get())
    body = httpx.get(f"{cloud.auth_url}/auth/tokens",
                     headers={"X-Auth-Token": token, "X-Subject-Token": token}).json()
    roles = {r["name"] for r in body["token"]["roles"]}
    assert {"admin", "service"} <= roles
    assert body["token"]["project"]["name"] == "service"


def test_a_service_this_process_hosts_is_called_in_process(cloud: RunningCloud) -> None:
    """The all-in-one answers its own services' calls through its ASGI app (no socket); a
    service placed elsewhere (service_urls) is called over HTTP. Same answers and errors."""
    async def compare(c):  # type: ignore[no-untyped-def]
        over_http: list[str] = []

        async def record(request: httpx.Request) -> None:
            over_http.append(request.url.path)

        client = c.clients.get(IdentityClient)
        c.clients.http.event_hooks["request"].append(record)
        try:
            assert c.clients.local("identity") is not None
            local = sorted(p["name"] for p in await client.projects())
            local_missing = await client.project("nope")
            assert over_http == []
            c.settings.service_urls["identity"] = c.settings.endpoint
            try:
                assert c.clients.local("identity") is None
                remote = sorted(p["name"] for p in await client.projects())
                remote_missing = await client.project("nope")
            finally:
                del c.settings.service_urls["identity"]
        finally:
            c.clients.http.event_hooks["request"].remove(record)
        return local, local_missing, remote, remote_missing, over_http

    local, local_missing, remote, remote_missing, over_http = cloud.call(compare)
    assert local == remote and "admin" in local
    assert local_missing is None and remote_missing is None
    assert over_http and all(path.startswith("/identity/") for path in over_http)


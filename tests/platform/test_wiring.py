"""The two wirings: state survives restarts; PostgreSQL, MariaDB and RabbitMQ work; a second
process validates tokens locally and applies revocations announced over the bus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import services
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


def login(cloud: RunningCloud) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    resp = httpx.post(f"{cloud.auth_url}/auth/tokens", json=body)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def validate(cloud: RunningCloud, auth: str, subject: str) -> int:
    return httpx.get(f"{cloud.auth_url}/auth/tokens",
                     headers={"X-Auth-Token": auth, "X-Subject-Token": subject}).status_code


def exercise_and_restart(state: Path, **settings: object) -> None:
    """Create things, revoke a token, restart: everything, and the revocation, persists."""
    first = RunningCloud(state, **settings).start()  # type: ignore[arg-type]
    try:
        token = login(first)
        doomed = login(first)
        headers = {"X-Auth-Token": token}
        created = httpx.post(f"{first.auth_url}/projects", headers=headers, json={
            "project": {"name": "persisted", "tags": ["a", "b"], "description": "x"}})
        assert created.status_code == 201, created.text
        listed = httpx.get(f"{first.auth_url}/projects", headers=headers,
                           params={"tags": "a,b"}).json()["projects"]
        assert [p["name"] for p in listed] == ["persisted"]
        dup = httpx.post(f"{first.auth_url}/projects", headers=headers,
                         json={"project": {"name": "persisted"}})
        assert dup.status_code == 409
        assert httpx.delete(f"{first.auth_url}/auth/tokens", headers={
            **headers, "X-Subject-Token": doomed}).status_code == 204
    finally:
        first.stop()
    second = RunningCloud(state, **settings).start()  # type: ignore[arg-type]
    try:
        assert validate(second, token, token) == 200
        assert validate(second, token, doomed) == 404
        names = [p["name"] for p in httpx.get(
            f"{second.auth_url}/projects", headers={"X-Auth-Token": token}).json()["projects"]]
        assert "persisted" in names
    finally:
        second.stop()


def test_restart_keeps_data_tokens_and_revocations(tmp_path: Path) -> None:
    exercise_and_restart(tmp_path / "state")


@pytest.fixture(params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url, name = services.create_database(request.param)
    yield url
    services.drop_database(request.param, name)


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    vhost = services.create_vhost()
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    services.delete_vhost(vhost)


def test_identity_on_real_databases(tmp_path: Path, database_url: str) -> None:
    exercise_and_restart(tmp_path / "state", database_url=database_url)


def test_second_process_validates_locally_and_sees_revocations(
        tmp_path: Path, rabbit_url: str) -> None:
    url, name = services.create_database("postgresql")
    identity = RunningCloud(tmp_path / "identity", services=["identity"], database_url=url,
                            bus_url=rabbit_url).start()
    other = None
    try:
        other = RunningCloud(tmp_path / "other", services=[], bus_url=rabbit_url,
                             service_urls={"identity": identity.url}).start()
        token = login(identity)
        assert other.cloud is not None
        auth = other.cloud.token_auth
        assert auth.validate(token).project_name == "admin"
        assert httpx.delete(f"{identity.auth_url}/auth/tokens", headers={
            "X-Auth-Token": token, "X-Subject-Token": token}).status_code == 204
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not auth.revocations.is_revoked(
                auth.verifier.verify(token)):
            time.sleep(0.02)
        assert auth.revocations.is_revoked(auth.verifier.verify(token))
    finally:
        if other is not None:
            other.stop()
        identity.stop()
        services.drop_database("postgresql", name)


def test_two_identity_processes_see_each_others_writes(tmp_path: Path,
                                                        rabbit_url: str) -> None:
    """Each process caches project lists; the other's writes arrive over the bus."""
    url, name = services.create_database("postgresql")
    first = RunningCloud(tmp_path / "a", services=["identity"], database_url=url,
                         bus_url=rabbit_url).start()
    second = None
    try:
        second = RunningCloud(tmp_path / "b", services=["identity"], database_url=url,
                              bus_url=rabbit_url).start()
        headers_b = {"X-Auth-Token": login(second)}
        listing = f"{second.auth_url}/projects"
        before = [p["name"] for p in httpx.get(listing, headers=headers_b).json()["projects"]]
        assert "made-in-a" not in before  # now cached in b
        created = httpx.post(f"{first.auth_url}/projects", json={"project": {
            "name": "made-in-a"}}, headers={"X-Auth-Token": login(first)})
        assert created.status_code == 201
        deadline = time.monotonic() + 10
        names: list[str] = []
        while time.monotonic() < deadline:
            names = [p["name"] for p in httpx.get(listing, headers=headers_b)
                     .json()["projects"]]
            if "made-in-a" in names:
                break
            time.sleep(0.02)
        assert "made-in-a" in names
    finally:
        if second is not None:
            second.stop()
        first.stop()
        services.drop_database("postgresql", name)

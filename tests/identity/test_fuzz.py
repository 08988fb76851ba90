"""schemathesis over identity's OpenAPI document: whatever it sends, never a 5xx.

A cloud of its own: fuzzed DELETEs and PATCHes must not disturb the shared one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.identity.test_tokens import password_body
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = RunningCloud(Path(tmp_path_factory.mktemp("fuzz"))).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fuzz_token(fuzz_cloud: RunningCloud) -> str:
    import httpx

    resp = httpx.post(f"{fuzz_cloud.auth_url}/auth/tokens",
                      json=password_body("admin", ADMIN_PASSWORD))
    return resp.headers["X-Subject-Token"]


@pytest.fixture(scope="module")
def identity_schema(fuzz_cloud: RunningCloud):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_url(f"{fuzz_cloud.url}/identity/openapi.json")
    schema.config.update(base_url=f"{fuzz_cloud.url}/identity")
    return schema


schema = schemathesis.pytest.from_fixture("identity_schema")


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_identity_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    case.headers = {**(case.headers or {}), "X-Auth-Token": fuzz_token}
    response = case.call(timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")

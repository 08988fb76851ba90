"""schemathesis over compute's OpenAPI document (the request schemas are Nova's): whatever
it sends, never a 5xx. A cloud of its own: fuzzed deletes must not disturb the shared one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.compute.conftest import SERVICES, login
from tests.support.cloud import ADMIN_PASSWORD, RunningCloud


@pytest.fixture(scope="module")
def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    running = RunningCloud(Path(tmp_path_factory.mktemp("compute-fuzz")), services=SERVICES,
                           compute={"hosts": ["fuzz-host"]}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fuzz_token(fuzz_cloud: RunningCloud) -> str:
    return login(fuzz_cloud, "admin", ADMIN_PASSWORD, "admin")


@pytest.fixture(scope="module")
def compute_schema(fuzz_cloud: RunningCloud):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_url(f"{fuzz_cloud.url}/compute/openapi.json")
    schema.config.update(base_url=f"{fuzz_cloud.url}/compute")
    return schema


schema = schemathesis.pytest.from_fixture("compute_schema")


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_compute_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    case.headers = {**(case.headers or {}), "X-Auth-Token": fuzz_token,
                    "OpenStack-API-Version": "compute latest"}
    response = case.call(timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")

"""schemathesis over a service's OpenAPI document, on a cloud of the module's own (fuzzed
DELETEs and PUTs must not disturb the shared cloud): whatever it sends, never a 5xx.

    fuzz_cloud, fuzz_token, network_schema = api_fixtures("network", ["identity", "network"])
    schema = schemathesis.pytest.from_fixture("network_schema")

    @schema.parametrize()
    @FUZZ
    def test_network_api_never_answers_5xx(case, fuzz_token):
        call_without_5xx(case, fuzz_token)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.cloud import RunningCloud

FUZZ = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))


def api_fixtures(path: str, services: list[str] | None = None,
                 **cloud_settings: Any) -> tuple[Any, Any, Any]:
    """Module-scoped fixtures: `fuzz_cloud`, `fuzz_token` and `<path>_schema`."""

    @pytest.fixture(scope="module", name="fuzz_cloud")
    def fuzz_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
        running = RunningCloud(tmp_path_factory.mktemp(f"{path}-fuzz"), services=services,
                               **cloud_settings).start()
        yield running
        running.stop()

    @pytest.fixture(scope="module", name="fuzz_token")
    def fuzz_token(fuzz_cloud: RunningCloud) -> str:
        return fuzz_cloud.token()

    @pytest.fixture(scope="module", name=f"{path}_schema")
    def api_schema(fuzz_cloud: RunningCloud) -> Any:
        schema = schemathesis.openapi.from_url(f"{fuzz_cloud.url}/{path}/openapi.json")
        schema.config.update(base_url=f"{fuzz_cloud.url}/{path}")
        return schema

    return fuzz_cloud, fuzz_token, api_schema


def call_without_5xx(case: Any, token: str, **headers: str) -> Any:
    case.headers = {**(case.headers or {}), "X-Auth-Token": token, **headers}
    response = case.call(timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")
    return response

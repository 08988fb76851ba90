"""schemathesis over compute's OpenAPI document (its request schemas are Nova's), at the
newest microversion: never a 5xx (see tests/support/fuzz.py). Three examples per operation:
there are ninety operations."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from tests.compute.conftest import SERVICES
from tests.support.fuzz import api_fixtures, call_without_5xx

fuzz_cloud, fuzz_token, compute_schema = api_fixtures(
    "compute", SERVICES, compute={"hosts": ["fuzz-host"]})
schema = schemathesis.pytest.from_fixture("compute_schema")


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_compute_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    call_without_5xx(case, fuzz_token, **{"OpenStack-API-Version": "compute latest"})

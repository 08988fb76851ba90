"""schemathesis over placement's OpenAPI document, and hypothesis over what the document does
not describe (query strings of the candidate search, bodies at every microversion): whatever
is sent, never a 5xx.

A cloud of its own: fuzzed DELETEs and PUTs must not disturb the shared one."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cloud import RunningCloud
from tests.support.fuzz import api_fixtures, call_without_5xx

fuzz_cloud, fuzz_token, placement_schema = api_fixtures("placement", ["identity", "placement"])
schema = schemathesis.pytest.from_fixture("placement_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_placement_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    call_without_5xx(case, fuzz_token, **{"OpenStack-API-Version": "placement latest"})


VERSIONS = st.sampled_from(["1.0", "1.10", "1.14", "1.17", "1.21", "1.25", "1.28", "1.29",
                            "1.31", "1.33", "1.35", "1.36", "1.38", "1.39"])
UUIDISH = st.sampled_from(["00000000-0000-0000-0000-000000000000", "nope", "",
                           "in:00000000-0000-0000-0000-000000000000,x", "!in:", "!"])
VALUES = st.one_of(
    st.sampled_from(["VCPU:1", "VCPU:0", "VCPU:-1", "VCPU", "VCPU:1,MEMORY_MB:x", ":", ",",
                     "CUSTOM_X:1", "HW_CPU_X86_AVX2", "!HW_CPU_X86_AVX2", "in:", "in:,",
                     "in:HW_CPU_X86_AVX2,!X", "isolate", "none", "0", "1", "99999999999999",
                     "_A,_B", "", "!!!X", "a" * 300]),
    UUIDISH, st.text(max_size=12))
KEYS = st.sampled_from(["resources", "resources1", "resources_A", "required", "required1",
                        "required_A", "member_of", "member_of1", "in_tree", "in_tree1",
                        "group_policy", "limit", "root_required", "same_subtree", "bogus",
                        "resources_" + "x" * 70])


@given(version=VERSIONS, params=st.lists(st.tuples(KEYS, VALUES), max_size=6))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_candidate_queries_never_answer_5xx(fuzz_cloud: RunningCloud, fuzz_token: str,
                                            version: str, params: list[tuple[str, str]]
                                            ) -> None:
    resp = httpx.get(f"{fuzz_cloud.url}/placement/allocation_candidates", params=params,
                     headers={"X-Auth-Token": fuzz_token,
                              "OpenStack-API-Version": f"placement {version}"}, timeout=30)
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert set(resp.json()["errors"][0]) >= {"status", "title", "detail"}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["allocations", "resources", "VCPU", "project_id",
                                         "user_id", "consumer_generation", "consumer_type",
                                         "resource_provider_generation", "inventories",
                                         "total", "name", "traits", "aggregates", "uuid",
                                         "parent_provider_uuid", "mappings"]),
                        inner, max_size=4), max_leaves=8)
TARGETS = st.sampled_from([
    ("PUT", "/allocations/00000000-0000-0000-0000-000000000001"), ("POST", "/allocations"),
    ("POST", "/resource_providers"), ("POST", "/reshaper"), ("PUT", "/resource_classes/X"),
    ("POST", "/resource_classes"), ("PUT", "/traits/CUSTOM_FUZZ")])


@given(version=VERSIONS, target=TARGETS, body=JSON)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_bodies_at_every_version_never_answer_5xx(fuzz_cloud: RunningCloud, fuzz_token: str,
                                                  version: str, target: tuple[str, str],
                                                  body: Any) -> None:
    method, path = target
    resp = httpx.request(method, f"{fuzz_cloud.url}/placement{path}", json=body,
                         headers={"X-Auth-Token": fuzz_token,
                                  "OpenStack-API-Version": f"placement {version}"},
                         timeout=30)
    assert resp.status_code < 500, resp.text

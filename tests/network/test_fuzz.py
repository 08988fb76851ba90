"""schemathesis over the networking OpenAPI document: whatever it sends, never a 5xx.

A cloud of its own: fuzzed DELETEs and PUTs must not disturb the shared one."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nimbus.network import (
    address_groups,
    address_scopes,
    floatingips,
    networks,
    port_attrs,
    rbac,
    routers,
    security_groups,
    subnetpools,
    subnets,
)
from tests.support.cloud import RunningCloud
from tests.support.fuzz import FUZZ, api_fixtures, call_without_5xx

fuzz_cloud, fuzz_token, network_schema = api_fixtures("network", ["identity", "network"])
schema = schemathesis.pytest.from_fixture("network_schema")


@schema.parametrize()
@FUZZ
def test_network_api_never_answers_5xx(case, fuzz_token: str) -> None:  # type: ignore[no-untyped-def]
    call_without_5xx(case, fuzz_token)


# The OpenAPI document types bodies only as objects; this also aims at each resource's own
# attributes, with values of every JSON type (and plausible ones), on create and update.

PLAUSIBLE = st.sampled_from([
    "10.0.0.0/24", "10.0.0.5", "2001:db8::/64", "fa:16:3e:00:00:01", "tcp", "icmp", "ingress",
    "IPv6", "slaac", "00000000-0000-0000-0000-000000000000", "*", "", "x" * 300, -1, 0, 4, 6,
    65536, True, None, [], {}, [{"ip_address": "10.0.0.300"}], [{"subnet_id": "nope"}],
    [{"start": "10.0.0.9", "end": "10.0.0.2"}], [{"destination": "x", "nexthop": 1}],
    {"network_id": "00000000-0000-0000-0000-000000000000"}, ["a", 1], [None]])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.text(max_size=6), inner, max_size=3), max_leaves=6)
RESOURCES = {
    "networks": ("network", networks.SPEC), "subnets": ("subnet", subnets.SPEC),
    "ports": ("port", port_attrs.SPEC), "routers": ("router", routers.SPEC),
    "floatingips": ("floatingip", floatingips.SPEC),
    "security-groups": ("security_group", security_groups.GROUP_SPEC),
    "security-group-rules": ("security_group_rule", security_groups.RULE_SPEC),
    "subnetpools": ("subnetpool", subnetpools.SPEC),
    "address-scopes": ("address_scope", address_scopes.SPEC),
    "address-groups": ("address_group", address_groups.SPEC),
    "rbac-policies": ("rbac_policy", rbac.SPEC),
}


def bodies(spec: dict[str, object]) -> st.SearchStrategy[dict[str, object]]:
    return st.dictionaries(st.sampled_from(sorted(spec)), PLAUSIBLE | JSON, max_size=5)


@pytest.mark.parametrize("collection", sorted(RESOURCES))
def test_resource_bodies_never_answer_5xx(fuzz_cloud: RunningCloud, fuzz_token: str,
                                          collection: str) -> None:
    import httpx

    kind, spec = RESOURCES[collection]
    base = f"{fuzz_cloud.url}/network/v2.0/{collection}"
    client = httpx.Client(headers={"X-Auth-Token": fuzz_token}, timeout=30)
    existing = client.get(base).json()[collection.replace("-", "_")]
    target = existing[0]["id"] if existing else "00000000-0000-0000-0000-000000000000"

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies(spec), update=st.booleans())
    def check(body: dict[str, object], update: bool) -> None:
        if update:
            resp = client.put(f"{base}/{target}", json={kind: body})
        else:
            resp = client.post(base, json={kind: body})
        assert resp.status_code < 500, f"{body} -> {resp.status_code}: {resp.text[:300]}"
        if resp.status_code == 201:
            client.delete(f"{base}/{resp.json()[kind]['id']}")

    check()

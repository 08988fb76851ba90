"""The unmodified CLI for what the other modules drive mostly over HTTP: subnets, subnet
pools, address scopes and network RBAC (a few calls: each costs a process start)."""

from __future__ import annotations

from tests.network.conftest import Api
from tests.support.cloud import RunningCloud


def test_cli_subnet_pool_scope_and_rbac(cloud: RunningCloud, api: Api, member: Api,
                                        name: str) -> None:
    scope = cloud.cli("address", "scope", "create", "--ip-version", "4", name, "-f", "json")
    pool = cloud.cli("subnet", "pool", "create", "--pool-prefix", "10.230.0.0/16",
                     "--default-prefix-length", "24", "--address-scope", scope["id"], name,
                     "-f", "json")
    assert pool["address_scope_id"] == scope["id"]
    net = api.create("network", name=name)
    subnet = cloud.cli("subnet", "create", "--network", net["id"], "--subnet-pool",
                       pool["id"], "--dns-nameserver", "9.9.9.9", name, "-f", "json")
    assert subnet["cidr"] == "10.230.0.0/24" and subnet["dns_nameservers"] == ["9.9.9.9"]
    rbac = cloud.cli("network", "rbac", "create", "--type", "network", "--action",
                     "access_as_shared", "--target-project", member.project_id, net["id"],
                     "-f", "json")
    assert rbac["target_project_id"] == member.project_id
    assert member.get(f"/networks/{net['id']}").json()["network"]["shared"] is True

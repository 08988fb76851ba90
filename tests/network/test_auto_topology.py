"""Auto-allocated topology ("get me a network"): made on a project's first request from the
bootstrap's default external network and default subnet pool, the same afterwards, one even
for concurrent first requests, removed on DELETE; dry-run checks the deployment."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.network.conftest import Api, error, token_for
from tests.support.cloud import RunningCloud

PATH = "/auto-allocated-topology/{}"


class Project:
    def __init__(self, cloud: RunningCloud, admin: Any) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.name = f"auto-{suffix}"
        self.user = f"auto-user-{suffix}"
        self.password = f"pw-{suffix}"
        project = admin.identity.create_project(name=self.name, domain_id="default")
        user = admin.identity.create_user(name=self.user, password=self.password,
                                          domain_id="default", default_project_id=project.id)
        admin.identity.assign_project_role_to_user(project, user,
                                                   admin.identity.find_role("member"))
        self.id: str = project.id
        self.api = Api(cloud, token_for(cloud, self.user, self.password, self.name), project.id)

    def cli(self, cloud: RunningCloud, *args: str, check: bool = True) -> Any:
        return cloud.cli(*args, user=self.user, password=self.password, project=self.name,
                         check=check)


@pytest.fixture
def project(cloud: RunningCloud, admin: Any) -> Project:
    return Project(cloud, admin)


def test_cli_creates_the_topology_once_and_deletes_it(cloud: RunningCloud, api: Api,
                                                      project: Project) -> None:
    check = project.cli(cloud, "network", "auto", "allocated", "topology", "create",
                        "--check-resources", "-f", "json")
    assert check == {"dry_run": "pass"}
    assert project.api.get("/networks").json()["networks"] == [
        n for n in project.api.get("/networks").json()["networks"] if n["router:external"]]
    made = project.cli(cloud, "network", "auto", "allocated", "topology", "create",
                       "-f", "json")
    assert made["project_id"] == project.id
    net = project.api.get(f"/networks/{made['id']}").json()["network"]
    assert net["name"] == "auto_allocated_network" and net["project_id"] == project.id
    assert net["shared"] is False and len(net["subnets"]) == 1
    subnet = project.api.get(f"/subnets/{net['subnets'][0]}").json()["subnet"]
    pool = api.get("/subnetpools", params={"is_default": "true", "ip_version": 4}).json()[
        "subnetpools"][0]
    assert pool["name"] == "shared-default-subnetpool-v4" and pool["shared"] is True
    assert subnet["subnetpool_id"] == pool["id"] and subnet["cidr"].endswith("/26")
    assert ipaddress.IPv4Network(subnet["cidr"]).subnet_of(
        ipaddress.IPv4Network(pool["prefixes"][0]))
    routers = project.api.get("/routers").json()["routers"]
    assert [r["name"] for r in routers] == ["auto_allocated_router"]
    public = api.get("/networks", params={"name": "public"}).json()["networks"][0]
    assert public["is_default"] is True
    assert routers[0]["external_gateway_info"]["network_id"] == public["id"]
    iface = project.api.get("/ports", params={"device_id": routers[0]["id"],
                                              "network_id": net["id"]}).json()["ports"]
    assert [ip["ip_address"] for ip in iface[0]["fixed_ips"]] == [subnet["gateway_ip"]]
    # Idempotent: the same network again, through the CLI and the SDK.
    again = project.cli(cloud, "network", "auto", "allocated", "topology", "create",
                        "-f", "json")
    assert again["id"] == made["id"]
    sdk = cloud.connect(user=project.user, password=project.password, project=project.name)
    assert sdk.network.get_auto_allocated_topology().id == made["id"]
    assert len(project.api.get("/networks", params={
        "name": "auto_allocated_network"}).json()["networks"]) == 1
    project.cli(cloud, "network", "auto", "allocated", "topology", "delete")
    assert project.api.get(f"/networks/{made['id']}").status_code == 404
    assert project.api.get("/routers").json()["routers"] == []
    assert project.api.get("/subnets", params={"network_id": made["id"]}).json()[
        "subnets"] == []
    # And a new one after that.
    fresh = project.api.get(PATH.format(project.id)).json()["auto_allocated_topology"]
    assert fresh["id"] != made["id"]
    assert project.api.delete(PATH.format(project.id)).status_code == 204


def race(project: Project, clients: int) -> None:
    """Concurrent first requests of one project: one topology, the same answer for all."""
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda _: project.api.get(PATH.format(project.id)),
                                range(clients)))
    assert [r.status_code for r in answers] == [200] * clients, [r.text for r in answers]
    ids = {r.json()["auto_allocated_topology"]["id"] for r in answers}
    assert len(ids) == 1
    nets = project.api.get("/networks", params={"project_id": project.id}).json()["networks"]
    assert [n["id"] for n in nets] == list(ids)
    assert len(project.api.get("/routers").json()["routers"]) == 1


def test_concurrent_first_requests_make_one_topology(project: Project) -> None:
    race(project, 4)
    assert project.api.delete(PATH.format(project.id)).status_code == 204


def test_policy_own_project_for_members_any_for_admin(cloud: RunningCloud, api: Api,
                                                      admin: Any, project: Project) -> None:
    other = Project(cloud, admin)
    refused = project.api.get(PATH.format(other.id))
    assert refused.status_code == 403
    assert project.api.delete(PATH.format(other.id)).status_code == 403
    by_admin = api.get(PATH.format(other.id))
    assert by_admin.status_code == 200, by_admin.text
    topology = by_admin.json()["auto_allocated_topology"]
    assert topology["project_id"] == topology["tenant_id"] == other.id
    seen = other.api.get(PATH.format(other.id)).json()["auto_allocated_topology"]
    assert seen["id"] == topology["id"]
    assert other.api.get(f"/networks/{seen['id']}").json()["network"]["project_id"] == \
        other.id
    assert api.delete(PATH.format(other.id)).status_code == 204
    assert api.delete(PATH.format(other.id)).status_code == 204  # nothing left: still fine


def test_topology_in_use_is_not_deleted(project: Project) -> None:
    net_id = project.api.get(PATH.format(project.id)).json()["auto_allocated_topology"]["id"]
    port = project.api.create("port", network_id=net_id, name="in-use")
    busy = project.api.delete(PATH.format(project.id))
    assert busy.status_code == 409 and error(busy)["type"] == "NetworkInUse"
    # Nothing was taken apart: the router still has its interface, the topology stays.
    assert project.api.get(PATH.format(project.id)).json()[
        "auto_allocated_topology"]["id"] == net_id
    routers = project.api.get("/routers").json()["routers"]
    assert len(project.api.get("/ports", params={"device_id": routers[0]["id"]}).json()[
        "ports"]) == 1
    assert project.api.delete(f"/ports/{port['id']}").status_code == 204
    assert project.api.delete(PATH.format(project.id)).status_code == 204


def test_unknown_fields_are_refused(project: Project) -> None:
    resp = project.api.get(PATH.format(project.id), params={"fields": "id"})
    assert resp.status_code == 400
    assert project.api.get("/networks", params={"project_id": project.id}).json()[
        "networks"] == []


# -- a deployment without the defaults ---------------------------------------------------------
@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A cloud without the network bootstrap: no default external network, no pool."""
    running = RunningCloud(Path(tmp_path_factory.mktemp("bare")),
                           services=["identity", "network"], network={"bootstrap": False})
    running.start()
    try:
        token = token_for(running, "admin", "nimbus-test-admin", "admin")
        import httpx

        project = httpx.get(f"{running.auth_url}/auth/tokens", headers={
            "X-Auth-Token": token, "X-Subject-Token": token}).json()["token"]["project"]["id"]
        yield Api(running, token, project)
    finally:
        running.stop()


def test_dry_run_and_failures_say_what_the_deployment_lacks(bare: Api) -> None:
    path = PATH.format(bare.project_id)
    dry = bare.get(path, params={"fields": "dry-run"})
    assert dry.status_code == 409
    assert error(dry)["message"] == "Deployment error: No default router:external network."
    failed = bare.get(path)
    assert failed.status_code == 409 and error(failed)["type"] == "AutoAllocationFailure"
    ext = bare.create("network", name="ext", **{"router:external": True, "is_default": True})
    bare.create("subnet", network_id=ext["id"], cidr="192.0.2.0/24", ip_version=4,
                enable_dhcp=False)
    dry = bare.get(path, params={"fields": "dry-run"})
    assert dry.status_code == 409
    assert error(dry)["message"] == "Deployment error: No default subnetpools defined."
    failed = bare.get(path)
    assert failed.status_code == 409
    assert error(failed)["message"].startswith(
        "Deployment error: Unable to provide tenant private network")
    assert bare.get("/networks", params={"name": "auto_allocated_network"}).json()[
        "networks"] == []
    # With default pools of both IP versions: a subnet of each, both on the router.
    bare.create("subnetpool", name="v4", prefixes=["10.200.0.0/16"], default_prefixlen=24,
                is_default=True, shared=True)
    bare.create("subnetpool", name="v6", prefixes=["2001:db8:100::/48"], default_prefixlen=64,
                is_default=True, shared=True)
    dry = bare.get(path, params={"fields": "dry-run"})
    assert dry.status_code == 200 and dry.json()["auto_allocated_topology"]["id"] == \
        "dry-run=pass"
    made = bare.get(path)
    assert made.status_code == 200, made.text
    net_id = made.json()["auto_allocated_topology"]["id"]
    subnets = bare.get("/subnets", params={"network_id": net_id}).json()["subnets"]
    assert sorted((s["ip_version"], s["cidr"]) for s in subnets) == [
        (4, "10.200.0.0/24"), (6, "2001:db8:100::/64")]
    router = bare.get("/routers", params={"name": "auto_allocated_router"}).json()[
        "routers"][0]
    assert router["external_gateway_info"]["network_id"] == ext["id"]
    ifaces = bare.get("/ports", params={"device_id": router["id"],
                                        "network_id": net_id}).json()["ports"]
    assert len(ifaces) == 2
    assert bare.delete(path).status_code == 204


# -- concurrency on the real databases ---------------------------------------------------------
@pytest.fixture(params=["postgresql", "mariadb"])
def real_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningCloud]:
    from tests.support import services

    with services.database(request.param) as url:
        running = RunningCloud(tmp_path / "state", services=["identity", "network"],
                               database_url=url).start()
        try:
            yield running
        finally:
            running.stop()


def test_concurrent_first_requests_on_real_databases(real_cloud: RunningCloud) -> None:
    admin = real_cloud.connect()
    for _ in range(2):
        race(Project(real_cloud, admin), 6)

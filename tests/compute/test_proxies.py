"""The proxy APIs below 2.36: images, security groups, floating IPs, networks."""

from __future__ import annotations

from tests.compute.conftest import Api
from tests.compute.test_moves import wait_image
from tests.compute.test_servers import private_network


def test_images_proxy(api: Api, image: str) -> None:
    listed = api.get("/images").json()["images"]
    assert image in [i["id"] for i in listed]
    shown = api.get(f"/images/{image}").json()["image"]
    assert shown["status"] == "ACTIVE" and shown["progress"] == 100
    assert shown["metadata"]["hw_architecture"] == "x86_64"
    assert shown["links"][2]["rel"] == "alternate"
    detail = api.get("/images/detail", params={"name": "tiny"}).json()["images"]
    assert image in [i["id"] for i in detail]
    assert api.get("/images", mv="2.36").status_code == 404
    assert api.get("/images/00000000-0000-4000-8000-000000000000").status_code == 404
    server_id = api.boot("imaged", image)["server"]["id"]
    api.wait(server_id)
    snap = api.action(server_id, {"createImage": {"name": "proxied"}}, mv="2.44")
    snap_id = snap.headers["Location"].rsplit("/", 1)[-1]
    wait_image(api, snap_id)
    mine = api.get("/images/detail", params={"server": server_id}).json()["images"]
    assert [i["id"] for i in mine] == [snap_id]
    assert mine[0]["server"]["id"] == server_id
    meta = f"/images/{snap_id}/metadata"
    assert api.post(meta, {"metadata": {"a": "1"}}).json()["metadata"]["a"] == "1"
    assert api.put(f"{meta}/b", {"meta": {"b": "2"}}).json() == {"meta": {"b": "2"}}
    assert api.get(f"{meta}/b").json() == {"meta": {"b": "2"}}
    assert api.delete(f"{meta}/a").status_code == 204
    assert "a" not in api.get(meta).json()["metadata"]
    assert api.delete(f"/images/{snap_id}").status_code == 204
    assert api.get(f"/images/{snap_id}").status_code == 404
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)


def test_security_groups_proxy(api: Api, image: str) -> None:
    made = api.post("/os-security-groups", {"security_group": {"name": "proxied",
                                                               "description": "d"}})
    assert made.status_code == 200, made.text
    group = made.json()["security_group"]
    assert group["tenant_id"] == api.project_id
    rule = api.post("/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22,
        "to_port": 22, "cidr": "10.0.0.0/8"}})
    assert rule.status_code == 200, rule.text
    assert rule.json()["security_group_rule"]["ip_range"] == {"cidr": "10.0.0.0/8"}
    bad = api.post("/os-security-group-rules", {"security_group_rule": {
        "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 70000,
        "to_port": 22}})
    assert bad.status_code == 400
    shown = api.get(f"/os-security-groups/{group['id']}").json()["security_group"]
    assert [r["from_port"] for r in shown["rules"]] == [22]
    assert group["id"] in [g["id"] for g in api.get("/os-security-groups").json()[
        "security_groups"]]
    server_id = api.boot("sg", image, networks=[{"uuid": private_network(api)}])[
        "server"]["id"]
    api.wait(server_id)
    names = [g["name"] for g in api.get(f"/servers/{server_id}/os-security-groups").json()[
        "security_groups"]]
    assert names == ["default"]
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)
    assert api.delete(f"/os-security-group-rules/{rule.json()['security_group_rule']['id']}"
                      ).status_code == 202
    assert api.delete(f"/os-security-groups/{group['id']}").status_code == 202
    assert api.get(f"/os-security-groups/{group['id']}").status_code == 404


def test_floating_ips_and_networks_proxy(api: Api, image: str) -> None:
    pools = api.get("/os-floating-ip-pools").json()["floating_ip_pools"]
    assert {"name": "public"} in pools
    made = api.post("/os-floating-ips", {"pool": "public"})
    assert made.status_code == 200, made.text
    fip = made.json()["floating_ip"]
    assert fip["instance_id"] is None and fip["pool"] == "public"
    server_id = api.boot("fip", image, networks=[{"uuid": private_network(api)}])[
        "server"]["id"]
    api.wait(server_id)
    api.action(server_id, {"addFloatingIp": {"address": fip["ip"]}}, mv="2.43")
    shown = api.get(f"/os-floating-ips/{fip['id']}").json()["floating_ip"]
    assert shown["instance_id"] == server_id and shown["fixed_ip"]
    api.action(server_id, {"removeFloatingIp": {"address": fip["ip"]}}, mv="2.43")
    assert api.get(f"/os-floating-ips/{fip['id']}").json()["floating_ip"]["instance_id"] is None
    api.action(server_id, {"addFloatingIp": {"address": fip["ip"]}}, mv="2.44", expect=404)
    assert api.delete(f"/os-floating-ips/{fip['id']}").status_code == 202
    api.delete(f"/servers/{server_id}")
    api.wait_gone(server_id)
    labels = {n["label"] for n in api.get("/os-networks").json()["networks"]}
    assert {"public", "private"} <= labels
    assert api.get("/os-tenant-networks").json()["networks"]
    assert api.get("/os-networks", mv="2.36").status_code == 404

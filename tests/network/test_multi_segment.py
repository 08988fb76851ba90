"""Networks of several segments (multi-provider) and the segment extension's /v2.0/segments.

The CLI's `network create --provider-*` gives one segment only: several go through the SDK and
HTTP."""

from __future__ import annotations

import random
from typing import Any

from tests.network.conftest import Api, error


def vni() -> int:
    """A VXLAN id far above what automatic allocation hands out in the shared cloud."""
    return random.randint(1_000_000, 16_000_000)


def two_segments(tunnel: int) -> list[dict[str, Any]]:
    return [{"provider:network_type": "vxlan", "provider:segmentation_id": tunnel},
            {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}]


def test_network_of_two_segments_shows_them_instead_of_provider_attributes(
        api: Api, admin: Any, name: str) -> None:
    tunnel = vni()
    net = api.create("network", name=name, segments=two_segments(tunnel))
    try:
        assert not any(k.startswith("provider:") for k in net)
        assert [s["provider:network_type"] for s in net["segments"]] == ["vxlan", "vlan"]
        assert net["segments"][0] == {"provider:network_type": "vxlan",
                                      "provider:physical_network": None,
                                      "provider:segmentation_id": tunnel}
        vlan = net["segments"][1]
        assert vlan["provider:physical_network"] == "physnet1"
        assert 100 <= vlan["provider:segmentation_id"] <= 4094
        assert net["mtu"] == 1450  # the smallest of the segments' (VXLAN: 1500 - 50)
        # The SDK reads the same back, and the segment resource lists both.
        found = admin.network.get_network(net["id"])
        assert found.segments == net["segments"]
        assert found.provider_network_type is None
        listed = sorted(admin.network.segments(network_id=net["id"]),
                        key=lambda s: s.network_type)
        assert [(s.network_type, s.physical_network, s.segmentation_id) for s in listed] == [
            ("vlan", "physnet1", vlan["provider:segmentation_id"]), ("vxlan", None, tunnel)]
        # Listing networks renders them the same way.
        rows = api.get("/networks", params={"name": name}).json()["networks"]
        assert rows[0]["segments"] == net["segments"]
        # Updating with the same segments is allowed; other segments are not.
        same = api.put(f"/networks/{net['id']}", {"network": {"segments": net["segments"]}})
        assert same.status_code == 200, same.text
        other = api.put(f"/networks/{net['id']}", {"network": {"segments": two_segments(
            vni())}})
        assert other.status_code == 400
    finally:
        assert api.delete(f"/networks/{net['id']}").status_code == 204
    # Its segmentation ids are free again.
    again = api.create("network", name=name, segments=[
        {"provider:network_type": "vxlan", "provider:segmentation_id": tunnel},
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
         "provider:segmentation_id": vlan["provider:segmentation_id"]}])
    assert api.delete(f"/networks/{again['id']}").status_code == 204


def test_segments_are_checked_like_provider_attributes(api: Api, name: str) -> None:
    tunnel = vni()
    dup = api.post("/networks", {"network": {"name": name, "segments": [
        {"provider:network_type": "vxlan", "provider:segmentation_id": tunnel},
        {"provider:network_type": "vxlan", "provider:segmentation_id": tunnel}]}})
    assert dup.status_code == 400 and error(dup)["type"] == "SegmentsContainDuplicateEntry"
    both = api.post("/networks", {"network": {"name": name, "segments": two_segments(tunnel),
                                              "provider:network_type": "vxlan"}})
    assert both.status_code == 400
    assert error(both)["type"] == "SegmentsSetInConjunctionWithProviders"
    unknown = api.post("/networks", {"network": {"name": name, "segments": [
        {"provider:network_type": "vxlan", "color": "red"}]}})
    assert unknown.status_code == 400
    not_list = api.post("/networks", {"network": {"name": name, "segments": "vxlan"}})
    assert not_list.status_code == 400
    bad_type = api.post("/networks", {"network": {"name": name, "segments": [
        {"provider:network_type": "vxlan"}, {"provider:network_type": "nope"}]}})
    assert bad_type.status_code == 400
    # A second segment's id is as taken as a first one's, both ways.
    net = api.create("network", name=name, segments=[
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
        {"provider:network_type": "vxlan", "provider:segmentation_id": tunnel}])
    try:
        clash = api.post("/networks", {"network": {
            "name": name, "provider:network_type": "vxlan",
            "provider:segmentation_id": tunnel}})
        assert clash.status_code == 409 and error(clash)["type"] == "TunnelIdInUse"
        clash = api.post("/networks", {"network": {"name": name, "segments": [
            {"provider:network_type": "vxlan"},
            {"provider:network_type": "vxlan", "provider:segmentation_id": tunnel}]}})
        assert clash.status_code == 409
        # Nothing of the refused requests stayed behind.
        assert [n["id"] for n in api.get("/networks", params={"name": name}).json()[
            "networks"]] == [net["id"]]
    finally:
        assert api.delete(f"/networks/{net['id']}").status_code == 204


def test_members_see_neither_segments_nor_provider_attributes(api: Api, member: Api,
                                                              name: str) -> None:
    net = api.create("network", name=name, shared=True, segments=two_segments(vni()))
    try:
        seen = member.get(f"/networks/{net['id']}").json()["network"]
        assert "segments" not in seen and "provider:network_type" not in seen
        refused = member.post("/networks", {"network": {"name": name,
                                                        "segments": two_segments(vni())}})
        assert refused.status_code == 403
        assert member.get("/segments").status_code == 403
    finally:
        assert api.delete(f"/networks/{net['id']}").status_code == 204


def test_segment_resource_add_subnet_and_delete(api: Api, admin: Any, name: str) -> None:
    net = api.create("network", name=name)
    assert "segments" not in net and net["provider:network_type"] == "vxlan"
    first = api.get("/segments", params={"network_id": net["id"]}).json()["segments"]
    assert len(first) == 1 and first[0]["segmentation_id"] == net[
        "provider:segmentation_id"]
    tunnel = vni()
    try:
        seg = admin.network.create_segment(network_id=net["id"], network_type="vxlan",
                                           segmentation_id=tunnel, name=name + "-seg")
        assert seg.segmentation_id == tunnel and seg.name == name + "-seg"
        shown = api.get(f"/networks/{net['id']}").json()["network"]
        assert len(shown["segments"]) == 2 and "provider:network_type" not in shown
        renamed = admin.network.update_segment(seg, name=name + "-renamed",
                                               description="second")
        assert renamed.name == name + "-renamed" and renamed.description == "second"
        fixed = api.put(f"/segments/{seg.id}", {"segment": {"segmentation_id": 7}})
        assert fixed.status_code == 400
        taken = api.post("/segments", {"segment": {
            "network_id": net["id"], "network_type": "vxlan", "segmentation_id": tunnel}})
        assert taken.status_code == 409
        # A subnet on the new segment; a segment of another network is refused.
        subnet = api.create("subnet", network_id=net["id"], cidr="10.231.0.0/24",
                            ip_version=4, segment_id=seg.id)
        assert subnet["segment_id"] == seg.id
        other = api.create("network", name=name + "-o")
        other_seg = api.get("/segments", params={"network_id": other["id"]}).json()[
            "segments"][0]
        wrong = api.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                 "cidr": "10.231.1.0/24",
                                                 "segment_id": other_seg["id"]}})
        assert wrong.status_code == 400
        missing = api.post("/subnets", {"subnet": {
            "network_id": net["id"], "ip_version": 4, "cidr": "10.231.1.0/24",
            "segment_id": "00000000-0000-0000-0000-000000000000"}})
        assert missing.status_code == 404
        assert api.delete(f"/networks/{other['id']}").status_code == 204
        in_use = api.delete(f"/segments/{seg.id}")
        assert in_use.status_code == 409 and error(in_use)["type"] == "SegmentInUse"
        assert api.delete(f"/subnets/{subnet['id']}").status_code == 204
        admin.network.delete_segment(seg)
        assert api.get(f"/segments/{seg.id}").status_code == 404
        back = api.get(f"/networks/{net['id']}").json()["network"]
        assert "segments" not in back
        assert back["provider:segmentation_id"] == net["provider:segmentation_id"]
        last = api.delete(f"/segments/{first[0]['id']}")
        assert last.status_code == 409
    finally:
        assert api.delete(f"/networks/{net['id']}").status_code == 204
    assert api.get("/segments", params={"network_id": net["id"]}).json()["segments"] == []


def test_deleting_the_first_segment_makes_the_next_one_the_networks(api: Api,
                                                                    name: str) -> None:
    tunnel = vni()
    net = api.create("network", name=name, segments=[
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
        {"provider:network_type": "vxlan", "provider:segmentation_id": tunnel}])
    try:
        rows = api.get("/segments", params={"network_id": net["id"],
                                            "network_type": "vlan"}).json()["segments"]
        assert len(rows) == 1
        assert api.delete(f"/segments/{rows[0]['id']}").status_code == 204
        shown = api.get(f"/networks/{net['id']}").json()["network"]
        assert shown["provider:network_type"] == "vxlan"
        assert shown["provider:segmentation_id"] == tunnel
    finally:
        assert api.delete(f"/networks/{net['id']}").status_code == 204


def test_extensions_are_listed(api: Api) -> None:
    aliases = {e["alias"] for e in api.get("/extensions").json()["extensions"]}
    assert {"multi-provider", "segment", "auto-allocated-topology"} <= aliases


def test_segment_bodies_never_answer_5xx(api: Api, name: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from nimbus.network import segments

    net = api.create("network", name=name)
    target = api.get("/segments", params={"network_id": net["id"]}).json()["segments"][0]
    plausible = st.sampled_from([net["id"], "vxlan", "vlan", "flat", "local", "gre", "physnet1",
                                 "public", "nope", None, -1, 0, 4095, 16777216, "x" * 300,
                                 True, [], {}, "00000000-0000-0000-0000-000000000000"])
    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                               lambda inner: st.lists(inner, max_size=3), max_leaves=4)
    made: list[str] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=st.dictionaries(st.sampled_from(sorted(segments.RESOURCE_SPEC)),
                                plausible | json_values, max_size=4), update=st.booleans())
    def check(body: dict[str, Any], update: bool) -> None:
        if update:
            resp = api.put(f"/segments/{target['id']}", {"segment": body})
        else:
            resp = api.post("/segments", {"segment": {"network_id": net["id"], **body}})
        assert resp.status_code < 500, f"{body} -> {resp.status_code}: {resp.text[:300]}"
        if resp.status_code == 201:
            made.append(resp.json()["segment"]["id"])
            assert api.delete(f"/segments/{made[-1]}").status_code == 204

    try:
        check()
    finally:
        assert api.delete(f"/networks/{net['id']}").status_code == 204

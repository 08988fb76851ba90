"""Who sees what: private, shared (members pending/accepted/rejected), community, public,
hidden; only owners (or admin) change or delete."""

from __future__ import annotations

import uuid

from tests.image.conftest import Api, Tenant


def test_private_images_are_invisible_to_other_projects(alice: Tenant, bob: Tenant) -> None:
    img = alice.api.create(visibility="private")
    assert bob.api.get(f"/v2/images/{img['id']}").status_code == 404
    assert img["id"] not in bob.api.ids()
    assert img["id"] not in bob.api.ids(visibility="all")
    assert bob.api.delete(f"/v2/images/{img['id']}").status_code == 404
    resp = bob.api.patch(f"/v2/images/{img['id']}",
                         [{"op": "replace", "path": "/name", "value": "mine"}])
    assert resp.status_code == 404
    assert img["id"] in alice.api.ids(visibility="private")


def test_sharing_with_accept_and_reject(alice: Tenant, bob: Tenant) -> None:
    img = alice.api.create()
    assert img["visibility"] == "shared"
    members = f"/v2/images/{img['id']}/members"
    assert bob.api.get(f"/v2/images/{img['id']}").status_code == 404
    resp = alice.api.post(members, json={"member": bob.project_id})
    assert resp.status_code == 200, resp.text
    member = resp.json()
    assert (member["image_id"], member["member_id"], member["status"]) == (
        img["id"], bob.project_id, "pending")
    assert member["schema"] == "/v2/schemas/member"
    assert alice.api.post(members, json={"member": bob.project_id}).status_code == 409
    # pending: readable by id, but not in the default list
    assert bob.api.get(f"/v2/images/{img['id']}").status_code == 200
    assert img["id"] not in bob.api.ids()
    assert bob.api.ids(visibility="shared", member_status="pending") == [img["id"]]
    # only the member decides; the owner cannot accept for him
    me = f"{members}/{bob.project_id}"
    assert alice.api.put(me, json={"status": "accepted"}).status_code == 403
    assert bob.api.put(me, json={"status": "maybe"}).status_code == 400
    resp = bob.api.put(me, json={"status": "accepted"})
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
    assert img["id"] in bob.api.ids()
    assert bob.api.put(me, json={"status": "rejected"}).status_code == 200
    assert img["id"] not in bob.api.ids()
    assert bob.api.get(f"/v2/images/{img['id']}").status_code == 200
    # members are listed in full to the owner, to a member only himself
    assert [m["member_id"] for m in alice.api.get(members).json()["members"]] == \
        [bob.project_id]
    assert bob.api.get(me).json()["status"] == "rejected"
    # a member only reads: no changes, no sharing onwards, no deletion
    assert bob.api.patch(f"/v2/images/{img['id']}",
                         [{"op": "add", "path": "/x", "value": "y"}]).status_code == 403
    assert bob.api.post(members, json={"member": uuid.uuid4().hex}).status_code == 403
    assert bob.api.delete(f"/v2/images/{img['id']}").status_code == 403
    # removed: gone from his sight
    assert alice.api.delete(me).status_code == 204
    assert alice.api.delete(me).status_code == 404
    assert bob.api.get(f"/v2/images/{img['id']}").status_code == 404


def test_member_errors(alice: Tenant, api: Api) -> None:
    private = alice.api.create(visibility="private")
    resp = alice.api.post(f"/v2/images/{private['id']}/members", json={"member": "p"})
    assert resp.status_code == 403 and "shared" in resp.json()["message"]
    shared = alice.api.create()
    resp = alice.api.post(f"/v2/images/{shared['id']}/members", json={"member": 5})
    assert resp.status_code == 400
    assert alice.api.post(f"/v2/images/{shared['id']}/members", json={}).status_code == 400
    assert alice.api.get(f"/v2/images/{shared['id']}/members/nobody").status_code == 404
    assert alice.api.get(f"/v2/images/{uuid.uuid4()}/members").status_code == 404


def test_community_public_and_hidden(api: Api, alice: Tenant, bob: Tenant) -> None:
    community = alice.api.create(visibility="community")
    assert bob.api.get(f"/v2/images/{community['id']}").status_code == 200
    assert community["id"] not in bob.api.ids()
    assert community["id"] in bob.api.ids(visibility="community")
    assert community["id"] in alice.api.ids()
    public = api.create(visibility="public")
    assert public["id"] in bob.api.ids()
    assert public["id"] in bob.api.ids(visibility="public")
    assert bob.api.patch(f"/v2/images/{public['id']}",
                         [{"op": "add", "path": "/x", "value": "y"}]).status_code == 403
    hidden = alice.api.create(os_hidden=True)
    assert hidden["id"] not in alice.api.ids()
    assert hidden["id"] in alice.api.ids(os_hidden="true")
    alice.api.patch(f"/v2/images/{hidden['id']}",
                    [{"op": "replace", "path": "/os_hidden", "value": False}])
    assert hidden["id"] in alice.api.ids()


def test_reader_may_look_but_not_touch(cloud, admin, alice: Tenant) -> None:  # type: ignore[no-untyped-def]
    from tests.image.conftest import login

    name = f"rdr-{uuid.uuid4().hex[:8]}"
    user = admin.identity.create_user(name=name, password="pw-reader-1", domain_id="default")
    admin.identity.assign_project_role_to_user(alice.project_id, user,
                                               admin.identity.find_role("reader"))
    from tests.image.conftest import Api as RawApi

    reader = RawApi(cloud, login(cloud, name, "pw-reader-1", alice.name), alice.project_id)
    img = alice.api.create(disk_format="raw", container_format="bare")
    assert reader.get(f"/v2/images/{img['id']}").status_code == 200
    assert img["id"] in reader.ids()
    assert reader.post("/v2/images", json={}).status_code == 403
    assert reader.delete(f"/v2/images/{img['id']}").status_code == 403
    assert reader.upload(img["id"], b"x").status_code == 403

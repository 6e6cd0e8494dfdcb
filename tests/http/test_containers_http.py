"""Containers over HTTP: manifests in the entity body, trees, lists, where-used, types."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from tests.conftest import bearer, token_for

E = "/repos/demo/entities"
PROBLEM = "application/problem+json"


def put(client: TestClient, key: str, body: dict) -> dict:  # type: ignore[type-arg]
    r = client.put(f"{E}/{key}", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


def make_unit(client: TestClient) -> str:
    first = put(client, "intro", {"type": "component.html", "title": "Intro"})["commit"]
    put(client, "quiz", {"type": "component.problem", "title": "Quiz"})
    put(
        client,
        "unit-1",
        {"type": "unit", "title": "Unit 1", "members": [{"key": "intro", "pin": first}, {"key": "quiz", "pin": None}]},
    )
    return first


def test_a_container_is_an_entity_with_members(client: TestClient) -> None:
    first = make_unit(client)
    body = client.get(f"{E}/unit-1", params={"state": "draft"}).json()
    assert body["members"] == [{"key": "intro", "pin": first}, {"key": "quiz", "pin": None}]
    assert client.get(f"{E}/intro", params={"state": "draft"}).json()["members"] is None


def test_bad_members_are_a_422_naming_each_and_nothing_is_written(client: TestClient) -> None:
    put(client, "intro", {"type": "component.html", "title": "Intro"})
    before = client.get("/repos/demo").json()["draft"]
    for members, loc in (
        ([{"key": "intro", "pin": "HEAD~1"}], ["members", 0, "pin"]),
        ([{"key": "nope", "pin": None}], ["members", 0, "key"]),
        ([{"key": "unit-1", "pin": None}], ["members", 0]),
    ):
        r = client.put(f"{E}/unit-1", json={"type": "unit", "title": "U", "members": members})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert r.json()["errors"][0]["loc"] == loc
    r = client.put(f"{E}/s", json={"type": "section", "title": "S", "members": [{"key": "intro", "pin": None}]})
    assert r.status_code == 422 and "intro" in r.json()["errors"][0]["msg"]
    assert client.get("/repos/demo").json()["draft"] == before


def test_tree_members_lists_and_where_used(client: TestClient) -> None:
    first = make_unit(client)
    put(client, "ss-1", {"type": "subsection", "title": "SS", "members": [{"key": "unit-1", "pin": None}]})
    tree = client.get(f"{E}/ss-1/tree", params={"state": "draft"}).json()
    assert tree["contains_unpublished_changes"] is True
    assert [(m["key"], m["pinned"]) for m in tree["members"][0]["members"]] == [("intro", True), ("quiz", False)]
    assert client.get(f"{E}/ss-1/tree").status_code == 404  # nothing live yet

    r = client.post(f"{E}/ss-1/publish")
    assert sorted(i["key"] for i in r.json()["items"]) == ["intro", "quiz", "ss-1", "unit-1"]
    live = client.get(f"{E}/ss-1/tree").json()
    assert live["members"][0]["members"][1]["title"] == "Quiz" and live["contains_unpublished_changes"] is False

    lists = {
        name: client.get(f"{E}/unit-1/members", params={"version": 1, "list": name}) for name in ("author", "initial")
    }
    assert lists["author"].json()["items"][1] == {"key": "quiz", "pin": None}
    assert lists["initial"].json()["items"][0] == {"key": "intro", "pin": first}
    assert lists["initial"].json()["items"][1]["pin"] is not None
    r = client.get(f"{E}/unit-1/members", params={"list": "frozen"})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert client.get(f"{E}/intro/members").json()["type"] == "urn:gitstore:problem:not-a-container"

    used = client.get(f"{E}/quiz/containers").json()["items"]
    assert used == [
        {"container": "unit-1", "view": "draft", "pinned": False},
        {"container": "unit-1", "view": "live", "pinned": False},
    ]


def test_delete_cascade_and_publish_over_http(client: TestClient) -> None:
    make_unit(client)
    client.post(f"{E}/unit-1/publish").raise_for_status()
    assert client.delete(f"{E}/quiz").status_code == 200
    assert client.get(f"{E}/unit-1", params={"state": "draft"}).json()["version"] == 2
    assert [m["key"] for m in client.get(f"{E}/unit-1/tree").json()["members"]] == ["intro", "quiz"]
    items = client.post(f"{E}/quiz/publish").json()["items"]
    assert sorted(i["key"] for i in items) == ["quiz", "unit-1"]
    assert [m["key"] for m in client.get(f"{E}/unit-1/tree").json()["members"]] == ["intro"]


def test_a_type_change_its_containers_refuse_is_a_problem_naming_them(client: TestClient) -> None:
    make_unit(client)  # unit-1 holds quiz unpinned
    r = client.patch(f"{E}/quiz", json={"type": "section"}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["containers"] == ["unit-1"]
    r = client.put("/repos/demo/types/unit", json={"allowed_member_types": ["section"]})
    assert r.status_code == 409 and r.json()["containers"] == ["unit-1"], r.text
    assert client.get("/repos/demo/types/unit").json()["allowed_member_types"] == ["component"]


def test_type_registry_get_put_and_override(client: TestClient) -> None:
    types = {t["name"]: t for t in client.get("/repos/demo/types").json()["items"]}
    assert types["unit"]["allowed_member_types"] == ["component"] and types["container"]["allowed_member_types"] is None
    assert client.get("/repos/demo/types/page").json() == {
        "name": "page",
        "allowed_member_types": [],
        "overridden": False,
    }
    r = client.put("/repos/demo/types/page", json={"allowed_member_types": ["page"]})
    assert r.status_code == 200 and r.json()["overridden"] is True
    put(client, "child", {"type": "page", "title": "Child"})
    put(client, "parent", {"type": "page", "title": "Parent", "members": [{"key": "child", "pin": None}]})
    for bad in ({"allowed_member_types": ["Not A Type"]}, {"allowed_member_types": "page"}, {}):
        r = client.put("/repos/demo/types/page", json=bad)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert client.get("/repos/demo/types/..%2Fx").status_code in (404, 422)


def test_readers_without_preview_see_only_live_trees_and_usages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", load_samples=False)
    reading = bearer(token_for(settings.data_dir, {"demo": ["read"]}))
    writing = bearer(token_for(settings.data_dir, {"*": ["admin"]}))
    with TestClient(create_app(settings), headers=reading) as reader:
        with TestClient(create_app(settings), headers=writing) as writer:
            writer.post("/repos", json={"name": "demo"}).raise_for_status()
            make_unit(writer)
            writer.post(f"{E}/unit-1/publish").raise_for_status()
            put(writer, "unit-2", {"type": "unit", "title": "Draft only", "members": [{"key": "quiz", "pin": None}]})
        assert reader.get(f"{E}/unit-1/tree", params={"state": "draft"}).status_code == 403
        assert reader.get(f"{E}/unit-1/members").status_code == 403
        tree = reader.get(f"{E}/unit-1/tree").json()
        assert tree["contains_unpublished_changes"] is None
        assert [u["container"] for u in reader.get(f"{E}/quiz/containers").json()["items"]] == ["unit-1"]


def test_prune_endpoint_dry_runs_unless_told_otherwise(client: TestClient) -> None:
    put(client, "scratch", {"type": "page", "title": "Scratch"})
    client.delete(f"{E}/scratch").raise_for_status()
    dry = client.post("/repos/demo/prune").json()
    assert dry["dry_run"] is True and dry["pruned_entities"] == ["scratch"]
    assert client.get(f"{E}/scratch/versions").status_code == 200
    done = client.post("/repos/demo/prune", params={"dry_run": "false"}).json()
    assert done["pruned_entities"] == ["scratch"]
    assert client.get(f"{E}/scratch/versions").status_code == 404

"""The REST contract: paths, status codes, ETags, preconditions, listing."""

from __future__ import annotations

from fastapi.testclient import TestClient

PAGE = {"type": "page", "title": "Intro", "base_path": "/intro", "fields": {"body": "one\ntwo\n"}}
E = "/repos/demo/entities"


def etag(response) -> str:  # type: ignore[no-untyped-def]
    return response.headers["etag"]


def test_put_creates_with_201_and_an_etag_naming_the_commit(client: TestClient) -> None:
    r = client.put(f"{E}/intro", json=PAGE)
    assert r.status_code == 201
    body = r.json()
    assert etag(r) == f'"{body["commit"]}"'
    assert body["version"] == 1 and body["state"] == "draft" and body["locale"] == "en"
    assert set(body) == {
        "key",
        "type",
        "title",
        "locale",
        "members",
        "base_path",
        "fields",
        "links",
        "version",
        "edition",
        "commit",
        "state",
        "published_commit",
        "has_unpublished_changes",
        "deleted",
        "author",
        "updated_at",
        "content_id",
        "unpublishing",
        "withdrawn_at",
        "warnings",
    }
    assert body["content_id"] == "intro" and body["unpublishing"] is None and body["warnings"] == []
    assert client.put(f"{E}/intro", json=PAGE | {"title": "Again"}).status_code == 200


def test_get_defaults_to_the_published_view_and_drafts_sit_behind_a_parameter(
    client: TestClient,
) -> None:
    client.put(f"{E}/intro", json=PAGE)
    missing = client.get(f"{E}/intro")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get(f"{E}/intro", params={"state": "draft"}).json()["title"] == "Intro"
    assert client.post(f"{E}/intro/publish").status_code == 200
    live = client.get(f"{E}/intro")
    assert live.status_code == 200 and live.json()["state"] == "published"
    assert etag(live) == f'"{live.json()["commit"]}"'


def test_if_match_write_succeeds_once_then_412_with_the_current_etag(client: TestClient) -> None:
    created = client.put(f"{E}/intro", json=PAGE)
    first = client.patch(
        f"{E}/intro",
        json={"title": "Mine"},
        headers={"If-Match": etag(created), "Content-Type": "application/merge-patch+json"},
    )
    assert first.status_code == 200
    stale = client.patch(
        f"{E}/intro",
        json={"title": "Theirs"},
        headers={"If-Match": etag(created), "Content-Type": "application/merge-patch+json"},
    )
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == etag(first)
    assert client.get(f"{E}/intro", params={"state": "draft"}).json()["title"] == "Mine"


def test_if_none_match_star_creates_only(client: TestClient) -> None:
    assert client.put(f"{E}/intro", json=PAGE, headers={"If-None-Match": "*"}).status_code == 201
    again = client.put(f"{E}/intro", json=PAGE, headers={"If-None-Match": "*"})
    assert again.status_code == 412


def test_merge_patch_removes_fields_with_null(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE | {"fields": {"a": 1, "b": 2}})
    r = client.patch(
        f"{E}/intro",
        content=b'{"fields": {"a": null}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200 and r.json()["fields"] == {"b": 2}


def test_base_path_clash_is_409_naming_the_holder(client: TestClient) -> None:
    client.put(f"{E}/a", json=PAGE)
    r = client.put(f"{E}/b", json=PAGE)
    assert r.status_code == 409
    assert r.json()["holder"] == "a" and r.json()["type"].endswith("base-path-taken")


def test_delete_then_publish_takes_the_page_down(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE)
    client.post(f"{E}/intro/publish")
    assert client.delete(f"{E}/intro").json()["deleted"] is True
    assert client.get(f"{E}/intro", params={"state": "draft"}).status_code == 404
    assert client.get(f"{E}/intro").status_code == 200
    client.post(f"{E}/intro/publish")
    assert client.get(f"{E}/intro").status_code == 404


def test_action_posts_accept_an_empty_body_without_content_type(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE)
    assert client.post(f"{E}/intro/publish", content=b"").status_code == 200
    client.patch(
        f"{E}/intro",
        json={"title": "Changed"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    r = client.post(f"{E}/intro/discard")
    assert r.status_code == 200 and r.json()["title"] == "Intro" and r.json()["version"] == 3
    assert client.post(f"{E}/intro/discard", json={}).status_code == 200


def test_publish_with_version_and_if_match(client: TestClient) -> None:
    v1 = client.put(f"{E}/intro", json=PAGE)
    client.patch(
        f"{E}/intro",
        json={"title": "Two"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    stale = client.post(f"{E}/intro/publish", headers={"If-Match": etag(v1)})
    assert stale.status_code == 412
    r = client.post(f"{E}/intro/publish", json={"version": 1})
    assert r.status_code == 200 and r.json()["items"][0]["version"] == 1
    assert client.post(f"{E}/intro/publish", json={"version": 2}).status_code == 200
    backwards = client.post(f"{E}/intro/publish", json={"version": 1})
    assert backwards.status_code == 409 and backwards.json()["type"].endswith("not-fast-forward")


def test_restore_and_versions(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE)
    client.patch(
        f"{E}/intro",
        json={"title": "Two"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    r = client.post(f"{E}/intro/restore", json={"version": 1})
    assert r.status_code == 200 and r.json()["title"] == "Intro" and r.json()["version"] == 3
    versions = client.get(f"{E}/intro/versions", params={"limit": 2})
    assert [v["version"] for v in versions.json()["items"]] == [3, 2]
    assert 'rel="next"' in versions.headers["link"]
    older = client.get(f"{E}/intro/versions", params={"cursor": versions.json()["next_cursor"]})
    assert [v["version"] for v in older.json()["items"]] == [1]
    assert client.get(f"{E}/intro", params={"version": 2}).json()["title"] == "Two"
    commit = older.json()["items"][0]["commit"]
    assert client.get(f"{E}/intro", params={"commit": commit}).json()["version"] == 1


def test_repository_publish_is_atomic_for_keys_or_all_drafts(client: TestClient) -> None:
    for key in ("a", "b", "c"):
        client.put(f"{E}/{key}", json={"type": "page", "title": key})
    r = client.post("/repos/demo/publish", json={"keys": ["a", "b"]})
    assert r.status_code == 200 and [i["key"] for i in r.json()["items"]] == ["a", "b"]
    bad = client.post("/repos/demo/publish", json={"keys": ["c", "nope"]})
    assert bad.status_code == 404
    assert client.get(f"{E}/c").status_code == 404  # nothing of the failed publish went live
    r = client.post("/repos/demo/publish", json={"all_drafts": True})
    assert [i["key"] for i in r.json()["items"]] == ["c"]


def test_listing_filters_and_paginates_with_a_link_header(client: TestClient) -> None:
    for n in range(5):
        client.put(
            f"{E}/page-{n}",
            json={
                "type": "page" if n % 2 else "guide",
                "title": f"P{n}",
                "locale": "cy" if n == 4 else "en",
            },
        )
    client.post("/repos/demo/publish", json={"keys": ["page-0", "page-1"]})
    live = client.get(E).json()
    assert [e["key"] for e in live["items"]] == ["page-0", "page-1"]
    page1 = client.get(E, params={"state": "draft", "limit": 2})
    assert [e["key"] for e in page1.json()["items"]] == ["page-0", "page-1"]
    next_url = page1.headers["link"].split(";")[0].strip("<>")
    page2 = client.get(next_url)
    assert [e["key"] for e in page2.json()["items"]] == ["page-2", "page-3"]
    guides = client.get(E, params={"state": "draft", "type": "guide"}).json()
    assert [e["key"] for e in guides["items"]] == ["page-0", "page-2", "page-4"]
    pending = client.get(E, params={"state": "draft", "has_unpublished_changes": "true"}).json()
    assert [e["key"] for e in pending["items"]] == ["page-2", "page-3", "page-4"]
    welsh = client.get(E, params={"state": "draft", "locale": "cy"}).json()
    assert [e["key"] for e in welsh["items"]] == ["page-4"]


def test_repositories_can_be_created_listed_and_read(client: TestClient) -> None:
    r = client.post("/repos", json={"name": "course-v2", "description": "Course"})
    assert r.status_code == 201 and r.headers["location"] == "/repos/course-v2"
    assert client.post("/repos", json={"name": "course-v2"}).status_code == 409
    assert [x["name"] for x in client.get("/repos").json()["items"]] == ["course-v2", "demo"]
    assert client.get("/repos/course-v2").json()["description"] == "Course"
    assert client.get("/repos/nope").status_code == 404


def test_a_held_lock_is_503_with_retry_after_and_nothing_changes(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    client.put(f"{E}/intro", json=PAGE)
    lock = settings.data_dir / "demo.git" / "refs" / "drafts" / "intro.lock"
    lock.write_text("")
    r = client.patch(
        f"{E}/intro",
        json={"title": "Blocked"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["type"].endswith(":busy")
    lock.unlink()
    assert client.get(f"{E}/intro", params={"state": "draft"}).json()["title"] == "Intro"

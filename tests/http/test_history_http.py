"""The history endpoints over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

E = "/repos/demo/entities"
BODY = "one\ntwo\nthree\nfour\nfive\nsix\n"
PATCH = {"Content-Type": "application/merge-patch+json"}


def seed(client: TestClient) -> str:
    first = client.put(f"{E}/guide", json={"type": "page", "title": "Guide", "fields": {"body": BODY}}).json()["commit"]
    client.post(f"{E}/guide/publish").raise_for_status()
    client.patch(f"{E}/guide", json={"fields": {"body": BODY.replace("two", "TWO")}}, headers=PATCH).raise_for_status()
    return first


def test_diff_as_json_and_as_a_patch(client: TestClient) -> None:
    seed(client)
    r = client.get(f"{E}/guide/diff")
    assert r.status_code == 200
    assert [(c["path"], c["op"]) for c in r.json()["changes"]] == [("/fields/body", "replace")]
    text = client.get(f"{E}/guide/diff", headers={"Accept": "text/x-diff"})
    assert text.headers["content-type"].startswith("text/x-diff")
    assert text.text.startswith("diff --git a/fields/body.txt b/fields/body.txt")
    assert client.get(f"{E}/guide/diff", params={"from": "1", "to": "2"}).json()["to_version"] == 2
    assert client.get(f"{E}/guide/diff", params={"from": "HEAD~1"}).status_code == 422


def test_blame_over_http(client: TestClient) -> None:
    seed(client)
    r = client.get(f"{E}/guide/blame", params={"field": "body"})
    assert r.status_code == 200 and r.json()["path"] == "fields/body.txt"
    assert [line["version"] for line in r.json()["lines"]] == [1, 2, 1, 1, 1, 1]
    assert client.get(f"{E}/guide/blame", params={"path": "../../config"}).status_code == 422
    assert client.get(f"{E}/guide/blame", params={"path": "entity.json", "field": "body"}).status_code == 422


def test_publish_log_and_activity(client: TestClient) -> None:
    seed(client)
    log = client.get("/repos/demo/publish-log").json()["items"]
    assert len(log) == 1 and log[0]["items"] == [
        {"key": "guide", "commit": log[0]["items"][0]["commit"], "version": 1, "deleted": False}
    ]
    activity = client.get("/repos/demo/activity", params={"limit": 1})
    assert activity.json()["items"][0]["action"] == "update" and 'rel="next"' in activity.headers["link"]
    rest = client.get("/repos/demo/activity", params={"cursor": activity.json()["next_cursor"]}).json()["items"]
    assert [c["action"] for c in rest] == ["create"]
    assert client.get("/repos/demo/activity", params={"key": "nope"}).json()["items"] == []


def test_as_of_reads(client: TestClient) -> None:
    seed(client)
    time.sleep(1.1)
    then = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    client.post(f"{E}/guide/publish").raise_for_status()
    assert client.get(f"{E}/guide", params={"as_of": then}).json()["fields"]["body"] == BODY
    assert client.get(f"{E}/guide").json()["fields"]["body"] == BODY.replace("two", "TWO")
    assert [e["key"] for e in client.get(E, params={"as_of": then}).json()["items"]] == ["guide"]
    assert client.get(f"{E}/guide", params={"as_of": "2000-01-01T00:00:00Z"}).status_code == 404
    assert client.get(f"{E}/guide", params={"as_of": "2026-01-01T00:00:00"}).status_code == 422  # no offset
    assert client.get(f"{E}/guide", params={"as_of": then, "state": "draft"}).status_code == 422


def test_stale_edit_with_base_merges_or_conflicts(client: TestClient) -> None:
    first = seed(client)
    merged = client.patch(f"{E}/guide", params={"base": first}, json={"title": "Mine"}, headers=PATCH)
    assert merged.status_code == 200
    assert merged.json()["title"] == "Mine" and "TWO" in merged.json()["fields"]["body"]
    conflict = client.patch(f"{E}/guide", params={"base": first}, json={"title": "Other"}, headers=PATCH)
    assert conflict.status_code == 409
    assert conflict.json()["conflicts"] == [{"path": "/title", "base": "Guide", "ours": "Mine", "theirs": "Other"}]
    put = client.put(
        f"{E}/guide",
        params={"base": first},
        json={"type": "page", "title": "Guide", "fields": {"body": BODY, "extra": 1}},
    )
    assert put.status_code == 200 and put.json()["fields"]["extra"] == 1 and put.json()["title"] == "Mine"
    both = client.patch(f"{E}/guide", params={"base": first}, json={}, headers=PATCH | {"If-Match": f'"{first}"'})
    assert both.status_code == 400
    assert client.patch(f"{E}/guide", params={"base": "abc"}, json={}, headers=PATCH).status_code == 422


def test_restore_by_commit_and_versions_published_at(client: TestClient) -> None:
    first = seed(client)
    r = client.post(f"{E}/guide/restore", json={"commit": first})
    assert r.status_code == 200 and r.json()["fields"]["body"] == BODY
    assert client.post(f"{E}/guide/restore", json={"version": 1, "commit": first}).status_code == 422
    versions = client.get(f"{E}/guide/versions").json()["items"]
    assert [(v["version"], v["live"], v["published_at"] is not None) for v in versions] == [
        (3, False, False),
        (2, False, False),
        (1, True, True),
    ]


def test_publish_and_unpublish_record_why_in_the_log_the_feed_and_git(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    """Issue 20: publish refused a message, and an unpublish was logged as "Publish guide
    version 3". GOV.UK's update_type and change_note now travel with both."""
    from gitstore import Store
    from gitstore.publishing.mirror import ensure_live_mirror
    from tests.conftest import git

    client.put(f"{E}/guide", json={"type": "page", "title": "Guide"}).raise_for_status()
    r = client.post(f"{E}/guide/publish", json={"update_type": "major", "change_note": "First version"})
    assert r.status_code == 200, r.text
    client.patch(f"{E}/guide", json={"title": "Guide 2"}, headers=PATCH).raise_for_status()
    client.post("/repos/demo/publish", json={"keys": ["guide"], "update_type": "minor"}).raise_for_status()
    r = client.post(
        f"{E}/guide/unpublish",
        json={"type": "gone", "explanation": "Scheme closed", "update_type": "major", "change_note": "Withdrawn"},
    )
    assert r.status_code == 200, r.text

    log = client.get("/repos/demo/publish-log").json()["items"]
    assert [(p["summary"], p["update_type"], p["change_note"]) for p in log] == [
        ("Unpublish guide (gone)", "major", "Withdrawn"),
        ("Publish guide version 2", "minor", None),
        ("Publish guide version 1", "major", "First version"),
    ]
    live = [e for e in client.get("/repos/demo/events").json()["items"] if e["view"] == "live"]
    assert [(e["kind"], e["update_type"], e["change_note"]) for e in live] == [
        ("published", "major", "First version"),
        ("published", "minor", None),
        ("unpublished", "major", "Withdrawn"),
    ]
    path = settings.data_dir / "demo.git"
    assert git(path, "log", "--format=%s|%(trailers:key=Gitstore-Update-Type,valueonly,separator=)", "main").split(
        "\n"
    )[:3] == ["Unpublish guide (gone)|major", "Publish guide version 2|minor", "Publish guide version 1|major"]
    assert "Gitstore-Change-Note: First version" in git(path, "log", "--format=%B", "main")
    # a change note is public in GOV.UK: the public copy keeps it
    public = ensure_live_mirror(Store(settings.data_dir).repository("demo"))
    assert "Gitstore-Change-Note: Withdrawn" in git(public, "log", "-1", "--format=%B", "main")

    # bad input is a 422 and nothing is written
    before = git(path, "rev-parse", "main")
    for body in (
        {"update_type": "urgent"},
        {"change_note": "two\nlines"},
        {"change_note": "   "},
        {"change_note": 5},
    ):
        client.patch(f"{E}/guide", json={"title": "Guide 3"}, headers=PATCH)
        r = client.post(f"{E}/guide/publish", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", body
    assert git(path, "rev-parse", "main") == before

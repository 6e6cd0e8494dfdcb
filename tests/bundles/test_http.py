"""Import and export over HTTP: media types, If-Match on the draft head, dry runs, publishing,
hostile archives, sizes and scopes, every error as problem+json."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.bundles.conftest import ndjson, tar_gz
from tests.bundles.test_safety import HOSTILE
from tests.conftest import bearer, disk_state, token_for

R = "/repos/demo"
PROBLEM = "application/problem+json"
BUNDLE = ndjson(
    [
        {"key": "unit", "document": {"type": "unit", "title": "Unit", "members": [{"key": "intro"}]}},
        {"key": "intro", "document": {"type": "component.html", "title": "Intro", "fields": {"html": "<p>hi</p>\n"}}},
    ]
)


def post(client: TestClient, body: bytes, media_type: str = "application/x-ndjson", **kwargs: object):  # type: ignore[no-untyped-def]
    headers = {"content-type": media_type, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return client.post(f"{R}/import", content=body, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_export_and_import_round_trip_in_every_format(client: TestClient) -> None:
    assert post(client, BUNDLE).status_code == 200
    client.post("/repos", json={"name": "copy"}).raise_for_status()
    for asked, media_type in (
        ({}, "application/gzip"),
        ({"headers": {"accept": "application/zip"}}, "application/zip"),
        ({"params": {"format": "ndjson"}}, "application/x-ndjson"),
    ):
        r = client.get(
            f"{R}/export", params={"state": "draft", **asked.get("params", {})}, headers=asked.get("headers")
        )
        assert r.status_code == 200 and r.headers["content-type"] == media_type, r.text
        assert r.headers["content-disposition"].startswith('attachment; filename="demo-draft.')
        imported = client.post("/repos/copy/import", content=r.content, headers={"content-type": media_type})
        assert imported.status_code == 200, imported.text
        again = client.get(
            "/repos/copy/export", params={"state": "draft", **asked.get("params", {})}, headers=asked.get("headers")
        )
        assert again.content == r.content


def test_an_import_on_a_stale_draft_head_is_a_412(client: TestClient) -> None:
    head = post(client, BUNDLE).json()["draft_head"]
    client.put(f"{R}/entities/intro", json={"type": "component.html", "title": "Edited meanwhile"})
    before = disk_state(client.app.state.store.repository("demo").path)  # type: ignore[attr-defined]
    r = post(client, BUNDLE, headers={"if-match": f'"{head}"'})
    assert r.status_code == 412 and r.headers["content-type"] == PROBLEM
    current = client.get(R).json()["draft"]
    assert r.json()["current_etag"] == f'"{current}"'
    assert disk_state(client.app.state.store.repository("demo").path) == before  # type: ignore[attr-defined]
    r = post(client, BUNDLE, headers={"if-match": f'"{current}"'})
    assert r.status_code == 200 and r.json()["changed"] == ["intro"]
    assert post(client, BUNDLE, headers={"if-match": "not-an-etag"}).status_code == 400


def test_a_dry_run_lists_every_problem_and_an_import_with_problems_is_a_422(client: TestClient) -> None:
    bad = BUNDLE + ndjson([{"key": "x", "document": {"type": "page"}}, {"key": "Bad Key", "document": {}}])
    before = client.get(R).json()
    dry = post(client, bad, params={"dry_run": "true"})
    assert dry.status_code == 200
    assert [(p["loc"][:2], p["key"]) for p in dry.json()["problems"]] == [
        (["line 3", "document"], "x"),
        (["line 4", "key"], None),
    ]
    r = post(client, bad)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"] == "urn:gitstore:problem:invalid-document" and len(r.json()["errors"]) == 2
    assert client.get(R).json() == before
    assert post(client, BUNDLE, params={"dry_run": "true"}).json()["created"] == ["intro", "unit"]
    assert client.get(R).json() == before


def test_publish_true_publishes_what_it_imported(client: TestClient) -> None:
    r = post(client, BUNDLE, params={"publish": "true"})
    assert r.status_code == 200, r.text
    assert sorted(item["key"] for item in r.json()["published"]["items"]) == ["intro", "unit"]
    assert client.get(f"{R}/entities/unit/tree").json()["members"][0]["title"] == "Intro"
    live = client.get(f"{R}/export", params={"format": "ndjson"}).content  # published is the default view
    assert sorted(orjson.loads(line)["key"] for line in live.splitlines()) == ["intro", "unit"]


def test_wrong_media_types_hostile_archives_and_large_bodies_are_refused(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    before = client.get(R).json()
    r = post(client, BUNDLE, "application/json")
    assert r.status_code == 415 and r.headers["content-type"] == PROBLEM
    r = post(client, tar_gz({"../../etc/passwd": b"root"}), "application/gzip")
    assert r.status_code == 422 and r.json()["type"] == "urn:gitstore:problem:invalid-bundle"
    assert "outside" in r.json()["detail"]
    small = settings.__class__(**{**settings.__dict__, "max_import_bytes": 1024})
    with TestClient(create_app(small)) as limited:
        r = limited.post(f"{R}/import", content=b"x" * 2048, headers={"content-type": "application/gzip"})
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert client.get(R).json() == before


def test_readers_export_what_is_live_and_writers_without_publish_cannot_publish(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    post(client, BUNDLE)
    reading = bearer(token_for(settings.data_dir, {"demo": ["read"]}))
    writing = bearer(token_for(settings.data_dir, {"demo": ["write"]}))
    with TestClient(create_app(settings)) as other:
        assert other.get(f"{R}/export", headers=reading).status_code == 200
        assert other.get(f"{R}/export", params={"state": "draft"}, headers=reading).status_code == 403
        assert post(other, BUNDLE, headers=reading).status_code == 403
        assert post(other, BUNDLE, headers=writing).status_code == 200
        r = post(other, BUNDLE, params={"publish": "true"}, headers=writing)
        assert r.status_code == 403 and r.json()["required_scope"] == "publish"
        r = other.get(f"{R}/export", params={"as_of": "yesterday"}, headers=reading)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "case", ["dot-dot in tar", "absolute path in tar", "symlink in tar", "symlink in zip", "zip bomb", "tar.gz bomb"]
)
def test_hostile_archives_are_a_422_problem_and_nothing_is_written(client: TestClient, case: str) -> None:
    media_type, data, why = HOSTILE[case]
    path = client.app.state.store.repository("demo").path  # type: ignore[attr-defined]
    before = disk_state(path)
    for dry_run in ("false", "true"):
        r = post(client, data, media_type, params={"dry_run": dry_run})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert r.json()["type"] == "urn:gitstore:problem:invalid-bundle" and why in r.json()["detail"]
    assert disk_state(path) == before

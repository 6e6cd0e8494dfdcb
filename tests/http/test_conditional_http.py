"""HEAD, OPTIONS, conditional GET and cache headers (RFC 9110, RFC 9111), over the REST routes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from tests.conftest import bearer, disk_state, token_for

PAGE = {"type": "page", "title": "Intro", "base_path": "/intro"}
E = "/repos/demo/entities"
# A value for each path parameter of the sample content, so each GET route answers 200.
SAMPLE = {
    "repo": "gov-pages",
    "key": "vehicle-tax",
    "content_id": "vehicle-tax",
    "base_path": "vehicle-tax",
    "name": "parent",
    "type": "course",
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("conditional") / "data"
    with TestClient(create_app(Settings(data_dir=data, load_samples=True, rate_limit=""))) as c:
        # An inactive subscription (and no relay in an app built here): nothing is ever sent.
        hook = {"url": "https://hooks.example.org/gitstore", "secret": "s" * 32, "active": False}
        created = c.post("/repos/gov-pages/webhooks", json=hook)
        assert created.status_code == 201, created.text
        SAMPLE["hook_id"] = created.json()["id"]
        yield c


def _get_routes() -> list[str]:
    document = create_app(Settings()).openapi()
    return sorted(path for path, operations in document["paths"].items() if "get" in operations)


@pytest.mark.parametrize("route", _get_routes())
def test_head_answers_every_get_route_with_gets_headers_and_no_body(samples: TestClient, route: str) -> None:
    path = re.sub(r"{(\w+)(?::path)?}", lambda m: SAMPLE.get(m.group(1), m.group(1)), route)
    if path.startswith("/repos/gov-pages/entities/vehicle-tax/") and path.endswith(("/tree", "/members")):
        path = path.replace("gov-pages", "demo-course").replace("vehicle-tax", "intro-to-python")
    params = {"wait": 0} if path.endswith("/events") else {}
    if path.endswith("/info/refs"):
        params = {"service": "git-upload-pack"}
    got, head = samples.get(path, params=params), samples.head(path, params=params)
    # A server running alone answers the cluster's routes, and their HEADs, with "not a cluster".
    expected = 404 if path.startswith("/admin/cluster") else 200
    assert got.status_code == expected, (path, got.text)
    if expected == 404:
        assert got.json()["type"].endswith("not-a-cluster"), got.text
    assert head.status_code == expected and head.content == b""
    for name in ("etag", "content-type", "content-length", "last-modified", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_head_of_health_is_200(samples: TestClient) -> None:
    head = samples.head("/health")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == samples.get("/health").headers["content-length"]


def test_head_never_reaches_a_route_that_writes(client: TestClient, settings: Settings) -> None:
    client.put(f"{E}/intro", json=PAGE)
    before = disk_state(settings.data_dir / "demo.git")
    for path in (f"{E}/intro/publish", f"{E}/intro/discard", "/repos/demo/publish", "/repos/demo/prune"):
        assert client.head(path).status_code == 405, path
    assert disk_state(settings.data_dir / "demo.git") == before
    assert client.get(f"{E}/intro").status_code == 404  # still never published


def test_if_none_match_with_the_current_etag_is_304_with_the_etag(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE)
    client.post(f"{E}/intro/publish")
    live = client.get(f"{E}/intro")
    tag = live.headers["etag"]
    for value in (tag, "W/" + tag, f'"{"0" * 40}", {tag}', "*"):
        again = client.get(f"{E}/intro", headers={"If-None-Match": value})
        assert again.status_code == 304, value
        assert again.content == b"" and again.headers["etag"] == tag
        assert again.headers["last-modified"] == live.headers["last-modified"]
        assert again.headers["cache-control"] == live.headers["cache-control"]
    assert client.head(f"{E}/intro", headers={"If-None-Match": tag}).status_code == 304
    assert client.get(f"{E}/intro", headers={"If-None-Match": f'"{"0" * 40}"'}).status_code == 200

    client.patch(f"{E}/intro", content=b'{"title": "Two"}', headers={"Content-Type": "application/merge-patch+json"})
    client.post(f"{E}/intro/publish")
    moved = client.get(f"{E}/intro", headers={"If-None-Match": tag})
    assert moved.status_code == 200 and moved.json()["title"] == "Two" and moved.headers["etag"] != tag
    # A miss is never 304, whatever it is sent with.
    assert client.get(f"{E}/nobody", headers={"If-None-Match": "*"}).status_code == 404


def test_live_reads_carry_cache_control_and_last_modified(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE)
    client.post(f"{E}/intro/publish")
    for path in (f"{E}/intro", "/repos/demo/paths/intro"):
        live = client.get(path)
        assert live.headers["cache-control"] == "no-cache", path
        assert "Authorization" in live.headers["vary"]
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", live.headers["last-modified"])
        assert live.headers["etag"] == f'"{live.json()["commit"]}"'
    assert client.get(E).headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", [E, f"{E}?state=draft", "/repos/demo/activity", "/repos/demo/publish-log"], ids=str)
def test_a_list_has_a_weak_etag_that_changes_exactly_when_a_change_can_show(client: TestClient, path: str) -> None:
    client.put(f"{E}/intro", json=PAGE)
    client.post(f"{E}/intro/publish")
    first = client.get(path)
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    cached = client.get(path, headers={"If-None-Match": tag})
    assert cached.status_code == 304 and cached.headers["etag"] == tag

    # A single draft change (not yet folded into `draft`) and a publish each move the tag.
    client.put(f"{E}/other", json={"type": "page", "title": "Other"})
    after_draft = client.get(path, headers={"If-None-Match": tag})
    client.post(f"{E}/other/publish")
    after_publish = client.get(path, headers={"If-None-Match": after_draft.headers["etag"]})
    assert after_draft.status_code == 200 and after_publish.status_code == 200
    assert len({tag, after_draft.headers["etag"], after_publish.headers["etag"]}) == 3
    assert "other" in after_publish.text


def test_readers_and_editors_get_different_list_etags(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with TestClient(create_app(Settings(data_dir=data, load_samples=False, rate_limit=""))) as c:
        c.post("/repos", json={"name": "demo"}).raise_for_status()
        c.put(f"{E}/intro", json=PAGE)
        c.post(f"{E}/intro/publish")
        editor = c.get(E, headers=bearer(token_for(data, {"demo": ["preview"]})))
        reader = c.get(E, headers=bearer(token_for(data, {"demo": ["read"]})))
    assert editor.status_code == reader.status_code == 200
    assert editor.headers["etag"] != reader.headers["etag"]


def test_options_and_405_list_every_method_of_the_path(client: TestClient) -> None:
    options = client.options(f"{E}/intro")
    assert options.status_code == 204
    assert options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    refused = client.post(f"{E}/intro")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    assert client.options("/repos").headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert client.options("/nowhere").status_code == 404

"""The live view of an entity (`GET /repos/{repo}/entities/{key}`, no query string) is answered
ahead of FastAPI's router (api.live_reads). Whatever it answers, FastAPI's own route answers the
same: `?state=published` asks that route for the same live view, so each pair below must agree
on status, body and every header but the date."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import api.live_reads
from api.main import create_app
from api.settings import Settings
from gitstore import Author, Store, content
from gitstore.publishing.api import PublishTarget
from tests.conftest import bearer, token_for

EDITOR = Author("Erin Editor", "erin@editors.example")
HEADERS = ("content-type", "etag", "cache-control", "vary", "last-modified", "location", "retry-after")


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, list[str], Path]]:
    """A client on a repository with live, pending, gone, redirected and draft-only entities,
    and the keys the live lane answered (it counts each call of the route's function)."""
    data = tmp_path / "data"
    repo = Store(data).create_repository("site")
    for key, title in (("live", "Live"), ("pending", "Live version"), ("gone", "Gone"), ("moved", "Moved")):
        content.put_draft(repo, key, {"type": "page", "title": title, "base_path": f"/{key}"}, author=EDITOR)
    content.publish(repo, [PublishTarget(k) for k in ("live", "pending", "gone", "moved")], author=EDITOR)
    content.put_draft(
        repo, "pending", {"type": "page", "title": "Draft version", "base_path": "/pending"}, author=EDITOR
    )
    content.put_draft(repo, "draft-only", {"type": "page", "title": "Never live"}, author=EDITOR)
    content.unpublish(repo, "gone", "gone", author=EDITOR, explanation="Withdrawn")
    content.unpublish(repo, "moved", "redirect", author=EDITOR, alternative_path="/live")
    Store(data).create_repository("secret")
    answered: list[str] = []
    real = api.live_reads.live_entity

    def counted(request, principal, repo, key):  # type: ignore[no-untyped-def]
        answered.append(key)
        return real(request, principal, repo, key)

    real_page = api.live_reads.versions_page

    async def page_counted(request, repo, key, cursor, limit):  # type: ignore[no-untyped-def]
        answered.append(f"versions of {key}")
        return await real_page(request, repo, key, cursor, limit)

    monkeypatch.setattr(api.live_reads, "live_entity", counted)
    monkeypatch.setattr(api.live_reads, "versions_page", page_counted)
    with TestClient(create_app(Settings(data_dir=data, load_samples=False))) as client:
        yield client, answered, data


def same_answer(client: TestClient, path: str, headers: dict[str, str] | None = None) -> int:
    fast = client.get(path, headers=headers, follow_redirects=False)
    routed = client.get(path + "?state=published", headers=headers, follow_redirects=False)
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert fast.content == routed.content
    for name in HEADERS:
        assert fast.headers.get(name) == routed.headers.get(name), name
    return fast.status_code


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("live", 200),
        ("pending", 200),
        ("gone", 410),
        ("moved", 301),
        ("draft-only", 404),
        ("never", 404),
        ("Bad..Key", 422),
    ],
)
def test_each_outcome_is_what_the_route_answers(
    served: tuple[TestClient, list[str], Path], key: str, status: int
) -> None:
    client, answered, data = served
    reader = bearer(token_for(data, {"site": ["read"]}))
    editor = bearer(token_for(data, {"site": ["read", "preview", "write"]}))
    for who in (reader, editor):
        assert same_answer(client, f"/repos/site/entities/{key}", who) == status
    assert answered.count(key) == 2  # the lane answered both callers; the ?state= asks did not reach it


def test_a_live_read_shows_the_live_version_and_a_draft_only_key_looks_unknown(
    served: tuple[TestClient, list[str], Path],
) -> None:
    client, _, data = served
    reader = bearer(token_for(data, {"site": ["read"]}))
    assert client.get("/repos/site/entities/pending", headers=reader).json()["title"] == "Live version"
    draft_only = client.get("/repos/site/entities/draft-only", headers=reader)
    never = client.get("/repos/site/entities/never-was", headers=reader)
    assert draft_only.json()["detail"].replace("draft-only", "K") == never.json()["detail"].replace("never-was", "K")


def test_a_repository_the_caller_holds_no_scope_on_is_not_found(served: tuple[TestClient, list[str], Path]) -> None:
    client, _, data = served
    reader = bearer(token_for(data, {"site": ["read"]}))
    assert same_answer(client, "/repos/secret/entities/live", reader) == 404
    assert same_answer(client, "/repos/nowhere/entities/live", reader) == 404
    assert client.get("/repos/site/entities/live", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_what_the_lane_does_not_take_goes_to_the_route(served: tuple[TestClient, list[str], Path]) -> None:
    client, answered, data = served
    editor = bearer(token_for(data, {"site": ["read", "preview"]}))
    assert client.get("/repos/site/entities/pending?state=draft", headers=editor).json()["title"] == "Draft version"
    assert client.get("/repos/Site/entities/live", headers=editor).status_code == 422  # FastAPI's name check
    assert client.head("/repos/site/entities/live", headers=editor).status_code == 200
    assert client.put("/repos/site/entities/live", headers=editor, json={"type": "page"}).status_code == 403
    assert answered == ["live"]  # the HEAD; the rest went to FastAPI's routes


def test_a_conditional_read_and_the_metrics_count_it_under_the_route(
    served: tuple[TestClient, list[str], Path],
) -> None:
    client, answered, data = served
    admin = bearer(token_for(data, {"*": ["read", "admin"]}))
    first = client.get("/repos/site/entities/live", headers=admin)
    again = client.get("/repos/site/entities/live", headers=admin | {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"] and not again.content
    assert answered == ["live", "live"]
    metrics = client.get("/metrics", headers=admin).text
    assert 'gitstore_http_requests_total{method="GET",route="/repos/{repo}/entities/{key}",status="200"} 1.0' in metrics
    assert 'route="/repos/{repo}/entities/{key}",status="304"} 1.0' in metrics


def test_a_versions_page_is_what_the_route_answers(served: tuple[TestClient, list[str], Path]) -> None:
    """The route takes `limit=02` as 2; the lane takes only plain numbers, so `02` reaches FastAPI."""
    client, answered, data = served
    editor = bearer(token_for(data, {"site": ["read", "preview"]}))
    reader = bearer(token_for(data, {"site": ["read"]}))
    for query, routed_query in (("limit=1", "limit=01"), ("limit=1&cursor=2", "limit=1&cursor=02"), ("", "limit=050")):
        lane = client.get(f"/repos/site/entities/pending/versions?{query}", headers=editor)
        routed = client.get(f"/repos/site/entities/pending/versions?{routed_query}", headers=editor)
        assert lane.status_code == routed.status_code == 200
        assert lane.content == routed.content
        assert lane.headers.get("link", "") == re.sub(r"=0+(?=\d)", "=", routed.headers.get("link", ""))
    first = client.get("/repos/site/entities/pending/versions?limit=1", headers=editor)
    assert len(first.json()["items"]) == 1 and f"cursor={first.json()['next_cursor']}>" in first.headers["link"]
    for who, status in ((reader, 403), ({}, 401)):
        assert client.get("/repos/site/entities/pending/versions", headers=who).status_code == status
        assert client.get("/repos/site/entities/pending/versions?limit=1", headers=who).status_code == status
    for bad in ("limit=0", "limit=501", "limit=x", "cursor=0", "limit=1&limit=2", "other=1"):
        answer = client.get(f"/repos/site/entities/pending/versions?{bad}", headers=editor)
        routed = client.get(f"/repos/site/entities/pending/versions?{bad}&", headers=editor)
        assert answer.status_code == routed.status_code and answer.content == routed.content, bad
    unknown = client.get("/repos/site/entities/never/versions", headers=editor)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert answered.count("versions of pending") == 4  # the lane's three pages and `limit=1` again


def test_an_accept_header_the_route_cannot_satisfy_is_refused_as_the_route_refuses_it(
    served: tuple[TestClient, list[str], Path],
) -> None:
    client, answered, data = served
    reader = bearer(token_for(data, {"site": ["read"]}))
    for accept, status in (("text/html", 406), ("application/json", 200), ("text/html, */*;q=0.1", 200)):
        assert same_answer(client, "/repos/site/entities/live", reader | {"Accept": accept}) == status
    editor = bearer(token_for(data, {"site": ["read", "preview"]}))
    refused = client.get("/repos/site/entities/live/versions", headers=editor | {"Accept": "text/html"})
    routed = client.get("/repos/site/entities/live/versions?limit=050", headers=editor | {"Accept": "text/html"})
    assert refused.status_code == routed.status_code == 406 and refused.content == routed.content
    assert answered == ["live", "live"]  # the two it took: a refusal never reads

"""An Accept the route cannot serve is 406 (RFC 9110 section 15.5.7), with what it can serve."""

from __future__ import annotations

from fastapi.testclient import TestClient

E = "/repos/demo/entities"


def test_an_accept_no_answer_satisfies_is_406_naming_what_the_route_serves(client: TestClient) -> None:
    client.put(f"{E}/intro", json={"type": "page", "title": "Intro"})
    for path, accept in (
        ("/health", "text/html"),
        (f"{E}/intro?state=draft", "application/xml"),
        (f"{E}/intro?state=draft", "application/json;q=0, text/html"),
        ("/repos/demo/export", "application/json"),
        ("/repos/demo/events", "text/event-stream;q=0"),
    ):
        refused = client.get(path, headers={"Accept": accept})
        assert refused.status_code == 406, (path, accept)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:gitstore:problem:not-acceptable"
    assert client.get("/health", headers={"Accept": "text/html"}).json()["accepted"] == ["application/json"]
    # Nothing is written when a write's answer cannot be served.
    refused = client.put(f"{E}/other", json={"type": "page", "title": "x"}, headers={"Accept": "text/html"})
    assert refused.status_code == 406
    assert client.get(f"{E}/other", params={"state": "draft"}).status_code == 404


def test_what_a_route_serves_is_accepted_however_it_is_named(client: TestClient) -> None:
    client.put(f"{E}/intro", json={"type": "page", "title": "Intro"})
    for path, accept, served in (
        (f"{E}/intro?state=draft", "application/*", "application/json"),
        (f"{E}/intro?state=draft", "text/html, application/json;q=0.5", "application/json"),
        (f"{E}/intro/diff", "text/x-diff", "text/x-diff"),
        ("/repos/demo/export", "application/zip", "application/zip"),
        ("/health", "*/*", "application/json"),
    ):
        answer = client.get(path, headers={"Accept": accept})
        assert answer.status_code == 200, (path, accept)
        assert answer.headers["content-type"].startswith(served)

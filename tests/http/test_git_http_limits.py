"""Bounds on the git endpoint: gzip bodies, inflation limits, the clone limit."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.git_http import _decode
from api.main import create_app
from api.problems import HTTPProblem
from api.settings import Settings


def test_gzip_request_bodies_are_inflated() -> None:
    body = b"0032want " + b"a" * 40 + b"\n00000009done\n"
    assert _decode("gzip", gzip.compress(body), 1024) == body
    assert _decode(None, body, 1024) == body


def test_a_gzip_bomb_is_refused_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    with pytest.raises(HTTPProblem) as caught:
        _decode("gzip", bomb, 1024 * 1024)
    assert caught.value.status == 413


def test_unknown_content_encoding_is_415() -> None:
    with pytest.raises(HTTPProblem) as caught:
        _decode("br", b"x", 1024)
    assert caught.value.status == 415


def test_over_the_clone_limit_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", load_samples=False, max_clones=0)
    with TestClient(create_app(settings)) as client:
        client.post("/repos", json={"name": "site"}).raise_for_status()
        r = client.post(
            "/git/site.git/git-upload-pack",
            content=b"0000",
            headers={"Content-Type": "application/x-git-upload-pack-request"},
        )
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"


def test_receive_pack_advertisement_is_refused(client: TestClient) -> None:
    r = client.get("/git/demo.git/info/refs", params={"service": "git-receive-pack"})
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert client.get("/git/nope.git/info/refs", params={"service": "git-upload-pack"}).status_code == 404

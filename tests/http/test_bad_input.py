"""Bad input: a clear 4xx problem+json, and nothing written (refs and locks unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import disk_state
from tests.http.refusals import assert_refused

E = "/repos/demo/entities"
GOOD = b'{"type": "page", "title": "T"}'
JSON = {"Content-Type": "application/json"}
PATCH = {"Content-Type": "application/merge-patch+json"}

# (method, path, body, headers, expected status)
CASES = {
    "malformed json": ("PUT", f"{E}/k", b'{"type": "page",', JSON, 400),
    "nan": ("PUT", f"{E}/k", b'{"type": "page", "title": "T", "fields": {"x": NaN}}', JSON, 400),
    "infinity": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "fields": {"x": -Infinity}}',
        JSON,
        400,
    ),
    "lone surrogate": ("PUT", f"{E}/k", b'{"type": "page", "title": "\\ud800"}', JSON, 400),
    "duplicate keys": ("PUT", f"{E}/k", b'{"type": "page", "title": "A", "title": "B"}', JSON, 400),
    "nested duplicate keys": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "A", "fields": {"a": 1, "a": 2}}',
        JSON,
        400,
    ),
    "invalid utf-8": ("PUT", f"{E}/k", b'{"type": "page", "title": "\xff\xfe"}', JSON, 400),
    "deep nesting": (
        "PUT",
        f"{E}/k",
        b'{"type":"page","title":"T","fields":' + b'{"a":' * 2000 + b"1" + b"}" * 2001,
        JSON,
        400,
    ),
    "nesting past the field limit": (
        "PUT",
        f"{E}/k",
        b'{"type":"page","title":"T","fields":' + b'{"a":' * 40 + b"1" + b"}" * 41,
        JSON,
        422,
    ),
    "text/plain": ("PUT", f"{E}/k", GOOD, {"Content-Type": "text/plain"}, 415),
    "no content type": ("PUT", f"{E}/k", GOOD, {}, 415),
    "form encoded": (
        "PUT",
        f"{E}/k",
        b"type=page",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
    ),
    "json array body": ("PUT", f"{E}/k", b"[1, 2]", JSON, 422),
    "unknown field": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "colour": "red"}',
        JSON,
        422,
    ),
    "server-owned version": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "version": 3}',
        JSON,
        422,
    ),
    "server-owned commit": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "commit": "abc"}',
        JSON,
        422,
    ),
    "wrong type for title": ("PUT", f"{E}/k", b'{"type": "page", "title": 3}', JSON, 422),
    "missing type": ("PUT", f"{E}/k", b'{"title": "T"}', JSON, 422),
    "fields not an object": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "fields": []}',
        JSON,
        422,
    ),
    "links not lists of keys": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "links": {"related": ["../x"]}}',
        JSON,
        422,
    ),
    "relative base_path": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "base_path": "x/y"}',
        JSON,
        422,
    ),
    "dot-dot base_path": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "base_path": "/a/../b"}',
        JSON,
        422,
    ),
    "title with newline": ("PUT", f"{E}/k", b'{"type": "page", "title": "a\\nb"}', JSON, 422),
    "bad locale": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "locale": "english!"}',
        JSON,
        422,
    ),
    "upper-case key": ("PUT", f"{E}/Intro", GOOD, JSON, 422),
    "dot-dot key": ("PUT", f"{E}/a..b", GOOD, JSON, 422),
    "leading dot key": ("PUT", f"{E}/.git", GOOD, JSON, 422),
    "lock suffix key": ("PUT", f"{E}/main.lock", GOOD, JSON, 422),
    "windows device key": ("PUT", f"{E}/con", GOOD, JSON, 422),
    "encoded traversal key": ("PUT", f"{E}/%2e%2e", GOOD, JSON, 422),
    "encoded slash key": ("PUT", f"{E}/a%2fb", GOOD, JSON, 404),
    "non-ascii key": ("PUT", f"{E}/caf%C3%A9", GOOD, JSON, 422),
    "over-long key": ("PUT", f"{E}/{'k' * 65}", GOOD, JSON, 422),
    "weak if-match": ("PUT", f"{E}/k", GOOD, JSON | {"If-Match": 'W/"' + "a" * 40 + '"'}, 412),
    "short if-match": ("PUT", f"{E}/k", GOOD, JSON | {"If-Match": '"abc123"'}, 400),
    "both preconditions": (
        "PUT",
        f"{E}/k",
        GOOD,
        JSON | {"If-Match": '"' + "a" * 40 + '"', "If-None-Match": "*"},
        400,
    ),
    "if-match on missing entity": (
        "PUT",
        f"{E}/k",
        GOOD,
        JSON | {"If-Match": '"' + "a" * 40 + '"'},
        412,
    ),
    "merge patch not an object": ("PATCH", f"{E}/existing", b"[1]", PATCH, 422),
    "merge patch making it invalid": ("PATCH", f"{E}/existing", b'{"title": null}', PATCH, 422),
    "patch of missing entity": ("PATCH", f"{E}/nope", b'{"title": "x"}', PATCH, 404),
    "publish version as string": ("POST", f"{E}/existing/publish", b'{"version": "1"}', JSON, 422),
    "publish unknown field": ("POST", f"{E}/existing/publish", b'{"force": true}', JSON, 422),
    "publish body without content type": (
        "POST",
        f"{E}/existing/publish",
        b'{"version": 1}',
        {},
        415,
    ),
    "publish version that does not exist": (
        "POST",
        f"{E}/existing/publish",
        b'{"version": 9}',
        JSON,
        404,
    ),
    "restore without version": ("POST", f"{E}/existing/restore", b"{}", JSON, 422),
    "restore version zero": ("POST", f"{E}/existing/restore", b'{"version": 0}', JSON, 422),
    "discard with fields": ("POST", f"{E}/existing/discard", b'{"version": 1}', JSON, 422),
    "repo publish with both forms": (
        "POST",
        "/repos/demo/publish",
        b'{"keys": ["existing"], "all_drafts": true}',
        JSON,
        422,
    ),
    "repo publish with bad key": ("POST", "/repos/demo/publish", b'{"keys": ["../x"]}', JSON, 422),
    "repo name with dot-dot": ("POST", "/repos", b'{"name": ".."}', JSON, 422),
    "repo name upper case": ("POST", "/repos", b'{"name": "Demo2"}', JSON, 422),
    "repo name with slash": ("POST", "/repos", b'{"name": "a/b"}', JSON, 422),
    "repo name ending .git": ("POST", "/repos", b'{"name": "x.git"}', JSON, 422),
    "repo name as number": ("POST", "/repos", b'{"name": 7}', JSON, 422),
    "repo path traversal": ("GET", "/repos/%2e%2e/entities/k", b"", {}, 422),
    "bad commit query": ("GET", f"{E}/existing?commit=HEAD~1", b"", {}, 422),
    "abbreviated commit query": ("GET", f"{E}/existing?commit=abc1234", b"", {}, 422),
    "version zero query": ("GET", f"{E}/existing?version=0", b"", {}, 422),
    "version not a number": ("GET", f"{E}/existing?version=x", b"", {}, 422),
    "bad state": ("GET", f"{E}/existing?state=secret", b"", {}, 422),
    "limit too large": ("GET", f"{E}?limit=100000", b"", {}, 422),
}


@pytest.fixture
def seeded(client: TestClient, settings) -> Iterator[tuple[TestClient, Path]]:  # type: ignore[no-untyped-def]
    client.put(f"{E}/existing", json={"type": "page", "title": "Existing"}).raise_for_status()
    yield client, settings.data_dir / "demo.git"


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gets_a_problem_and_writes_nothing(seeded: tuple[TestClient, Path], case: str) -> None:
    client, repo_path = seeded
    assert_refused(client, repo_path.parent, *CASES[case])


def test_oversized_body_is_refused_from_content_length_before_reading(
    seeded: tuple[TestClient, Path],
) -> None:
    client, repo_path = seeded
    before = disk_state(repo_path)
    big = b'{"type": "page", "title": "T", "fields": {"x": "' + b"a" * 70_000 + b'"}}'
    r = client.put(f"{E}/k", content=big, headers=JSON)
    assert r.status_code == 413 and r.json()["limit"] == 64 * 1024
    assert disk_state(repo_path) == before


def test_oversized_chunked_body_is_refused_while_streaming(seeded: tuple[TestClient, Path]) -> None:
    client, repo_path = seeded
    before = disk_state(repo_path)

    def chunks() -> Iterator[bytes]:
        yield b'{"type": "page", "title": "T", "fields": {"x": "'
        for _ in range(100):
            yield b"a" * 1024
        yield b'"}}'

    r = client.put(f"{E}/k", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert disk_state(repo_path) == before


def test_unknown_route_and_method_are_problems_too(client: TestClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = client.post("/repos/demo/entities/k/versions")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"

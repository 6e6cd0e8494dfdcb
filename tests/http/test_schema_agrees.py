"""The OpenAPI document says what the service enforces (issue 20): a body the document's schema
accepts is not refused as invalid, and one it refuses is refused, with nothing written. Each row
is a body on the edge of a rule a client generator would otherwise learn only from a 422."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from api.settings import Settings
from tests.conftest import bearer, token_for
from tests.http.refusals import assert_refused

_SCOPED = {"*": ["admin"]}

BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "repository name empty": ("/repos", {"name": ""}),
    "repository name reserved on Windows": ("/repos", {"name": "con"}),
    "repository name too long": ("/repos", {"name": "r" * 65}),
    "repository name with '..'": ("/repos", {"name": "a..b"}),
    "repository name ending .git": ("/repos", {"name": "site.git"}),
    "repository name fine": ("/repos", {"name": "site-2"}),
    "repository name 64 characters": ("/repos", {"name": "r" * 64}),
    "token scopes on an empty name": ("/admin/tokens", {"name": "t", "email": "t@x.y", "scopes": {"": ["read"]}}),
    "token scopes on a bad name": ("/admin/tokens", {"name": "t", "email": "t@x.y", "scopes": {"Demo": ["read"]}}),
    "token with an empty scope list": ("/admin/tokens", {"name": "t", "email": "t@x.y", "scopes": {"demo": []}}),
    "token for a repository named head": (
        "/admin/tokens",
        {"name": "t", "email": "t@x.y", "scopes": {"head": ["read"]}},
    ),
    "token living past the calendar": (
        "/admin/tokens",
        {"name": "t", "email": "t@x.y", "scopes": {"*": ["read"]}, "expires_in_seconds": 10**14},
    ),
    "token living a century": (
        "/admin/tokens",
        {"name": "t", "email": "t@x.y", "scopes": {"*": ["read"]}, "expires_in_seconds": 100 * 365 * 24 * 3600},
    ),
    "token holder with a line break": ("/admin/tokens", {"name": "t\nx", "email": "t@x.y", "scopes": {"*": ["read"]}}),
    "token for every repository": ("/admin/tokens", {"name": "t", "email": "t@x.y", "scopes": {"*": ["read"]}}),
    "client scopes on an empty name": (
        "/admin/clients",
        {"client_id": "c", "name": "c", "email": "c@x.y", "scopes": {"": ["read"]}},
    ),
    "client with an empty scope list": (
        "/admin/clients",
        {"client_id": "c", "name": "c", "email": "c@x.y", "scopes": {"demo": []}},
    ),
    "client for a repository named head": (
        "/admin/clients",
        {"client_id": "c", "name": "c", "email": "c@x.y", "scopes": {"head": ["write"]}},
    ),
}


@pytest.fixture
def admin(client: TestClient, settings: Settings) -> dict[str, str]:
    return bearer(token_for(settings.data_dir, _SCOPED))


def _body_schema(client: TestClient, path: str) -> dict[str, Any]:
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    return operation["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", BODIES)
def test_a_body_is_refused_exactly_when_the_schema_refuses_it(
    client: TestClient, admin: dict[str, str], tmp_path: Path, case: str
) -> None:
    path, body = BODIES[case]
    schema_accepts = Draft202012Validator(_body_schema(client, path)).is_valid(body)
    if schema_accepts:
        response = client.post(path, json=body, headers=admin)
        assert response.status_code == 201, response.text
    else:
        raw = json.dumps(body).encode()
        assert_refused(client, tmp_path / "data", "POST", path, raw, {**admin, "Content-Type": "application/json"}, 422)


@pytest.mark.parametrize("name", ["con", "a..b", "Demo", "r" * 65, "x.lock"])
def test_a_repository_name_in_the_path_is_checked_before_any_lookup(
    client: TestClient, settings: Settings, name: str
) -> None:
    # A caller scoped to one repository used to get 404 for these, from the repository lookup;
    # the document's pattern is now checked first, for everyone alike.
    scoped = bearer(token_for(settings.data_dir, {"demo": ["read"]}))
    response = client.get(f"/repos/{name}/entities", headers=scoped)
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:gitstore:problem:invalid-request"
    assert response.json()["errors"] == [{"loc": ["path", "repo"], "msg": response.json()["errors"][0]["msg"]}]


def test_publishing_still_refuses_if_none_match(client: TestClient, admin: dict[str, str]) -> None:
    client.put("/repos/demo/entities/page", json={"type": "page", "title": "P"}, headers=admin).raise_for_status()
    refused = client.post("/repos/demo/entities/page/publish", headers=admin | {"If-None-Match": "*"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"] == ["If-None-Match"]

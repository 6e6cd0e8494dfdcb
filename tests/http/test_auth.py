"""Scoped tokens: who may do what, to which repository, and who their commits say they are."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import Store, content
from gitstore.access.credentials import Credentials, default_path
from gitstore.publishing import api as publishing
from tests.conftest import ADA, GRACE, bearer, git, token_for
from tests.serving import free_port

PROBLEM = "application/problem+json"
E = "/repos/demo/entities"
PAGE = {"type": "page", "title": "Hello"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Two repositories: `demo` with one live page that has a newer draft, and `other`."""
    store = Store(tmp_path / "data")
    demo = store.create_repository("demo")
    content.put_draft(demo, "intro", PAGE, author=ADA)
    content.publish(demo, [publishing.PublishTarget("intro")], author=ADA)
    content.put_draft(demo, "intro", PAGE | {"title": "Hello, draft"}, author=ADA)
    store.create_repository("other")
    return tmp_path / "data"


def serve(data: Path, **overrides: object) -> TestClient:
    settings = Settings(data_dir=data, load_samples=False, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings))


@pytest.fixture
def app(data: Path) -> Iterator[TestClient]:
    token_for(data, {"*": ["admin"]})  # credentials exist: no more open mode
    with serve(data) as client:
        yield client


def with_scopes(data: Path, *scopes: str, repo: str = "demo") -> dict[str, str]:
    return bearer(token_for(data, {repo: list(scopes)}, who=GRACE))


# (method, path, body) for one route of each kind, and the scope it needs.
ROUTES = {
    "read": [("GET", f"{E}/intro", None), ("GET", f"{E}/intro/expanded-links", None), ("GET", "/repos/demo", None)],
    "preview": [
        ("GET", f"{E}/intro?state=draft", None),
        ("GET", f"{E}/intro/versions", None),
        ("GET", "/repos/demo/activity", None),
    ],
    "write": [("PUT", f"{E}/new", PAGE), ("PATCH", f"{E}/intro", {"title": "Changed"}), ("DELETE", f"{E}/intro", None)],
    "publish": [("POST", f"{E}/intro/publish", None)],
    "admin": [
        ("PUT", "/repos/demo/link-types/related", {"reverse": "related_from"}),
        ("POST", "/repos/demo/prune", None),
    ],
}
IMPLIED = {
    "read": {"read"},
    "preview": {"read", "preview"},
    "write": {"read", "preview", "write"},
    "publish": {"read", "preview", "publish"},
    "admin": set(ROUTES),
}


def call(client: TestClient, method: str, path: str, body: object, headers: dict[str, str]) -> int:
    headers = headers | ({"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {})
    if body is None:
        return client.request(method, path, headers=headers).status_code
    return client.request(method, path, json=body, headers=headers).status_code


@pytest.mark.parametrize("held", list(IMPLIED))
def test_each_scope_opens_exactly_the_routes_it_implies(data: Path, app: TestClient, held: str) -> None:
    headers = with_scopes(data, held)
    for needed, routes in ROUTES.items():
        for method, path, body in routes:
            status = call(app, method, path, body, headers)
            if needed in IMPLIED[held]:
                assert status < 400, (held, method, path, status)
            else:
                assert status == 403, (held, method, path, status)


def test_a_missing_scope_is_403_naming_the_scope(data: Path, app: TestClient) -> None:
    r = app.put(f"{E}/new", json=PAGE, headers=with_scopes(data, "preview"))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert r.json()["required_scope"] == "write" and "'demo'" in r.json()["detail"]


def _every_route_of(client: TestClient, repo: str) -> Iterator[tuple[str, str]]:
    """Each documented operation on a repository, plus git's undocumented push and dumb routes."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    for template, operations in spec["paths"].items():
        # /admin/ routes need admin on every repository: refused alike for any name (checked below)
        if "{repo}" in template and not template.startswith("/admin/"):
            path = re.sub(r"\{(?!repo\})[^}]+\}", "x", template).replace("{repo}", repo)
            yield from ((method.upper(), path) for method in operations)
    yield from [("POST", f"/git/{repo}.git/git-receive-pack"), ("GET", f"/git/{repo}.git/HEAD")]


def test_another_repositorys_token_finds_nothing_on_any_route_of_this_one(data: Path, app: TestClient) -> None:
    outsider = with_scopes(data, "admin", repo="other")
    routes = list(_every_route_of(app, "demo"))
    assert len(routes) > 25  # every REST route and the git routes
    for method, path in routes:
        r = app.request(method, path, headers=outsider | {"Content-Type": "application/json"}, content=b"{}")
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["type"].endswith("repository-not-found"), (method, path)
    # The same answer as for a repository that does not exist at all.
    missing = app.get("/repos/nowhere/entities", headers=outsider).json()
    hidden = app.get("/repos/demo/entities", headers=outsider).json()
    assert hidden == missing | {"detail": missing["detail"].replace("nowhere", "demo")}
    assert [r["name"] for r in app.get("/repos", headers=outsider).json()["items"]] == ["other"]
    # A cluster admin route about a repository says no more about it than about one that is not there.
    refused = app.get("/admin/cluster/moves/demo", headers=outsider)
    absent = app.get("/admin/cluster/moves/nowhere", headers=outsider)
    assert refused.status_code == absent.status_code == 403 and refused.json() == absent.json()


def test_the_tokens_person_is_the_git_author_of_its_commits(data: Path, app: TestClient) -> None:
    app.put(f"{E}/by-grace", json=PAGE, headers=with_scopes(data, "write")).raise_for_status()
    app.post(f"{E}/by-grace/publish", headers=with_scopes(data, "publish")).raise_for_status()
    log = git(data / "demo.git", "log", "-1", "--format=%an <%ae>", "refs/heads/draft")
    assert log.strip() == "Grace Hopper <grace@example.org>"
    published = git(data / "demo.git", "log", "-1", "--format=%an <%ae>", "refs/heads/main")
    assert published.strip() == "Grace Hopper <grace@example.org>"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer gst_000000000000_" + "A" * 43,
        "Bearer not-a-token",
        "Token abc",
        "Basic !!!",
    ],
)
def test_no_or_bad_credentials_are_401_with_a_challenge(app: TestClient, header: str | None) -> None:
    r = app.get(f"{E}/intro", headers={"Authorization": header} if header else {})
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="gitstore"')


def test_expired_and_revoked_tokens_stop_working_in_every_worker(data: Path, app: TestClient) -> None:
    credentials = Credentials(default_path(data))
    soon = credentials.create_token("Temp", "temp@example.org", {"demo": ["read"]}, expires_in=None)
    assert app.get(f"{E}/intro", headers=bearer(soon.secret)).status_code == 200
    with serve(data) as second_worker:
        credentials.revoke_token(soon.id)  # as the CLI would, from another process
        assert app.get(f"{E}/intro", headers=bearer(soon.secret)).status_code == 401
        assert second_worker.get(f"{E}/intro", headers=bearer(soon.secret)).status_code == 401
    from datetime import timedelta

    brief = credentials.create_token("Brief", "b@example.org", {"demo": ["read"]}, expires_in=timedelta(seconds=1))
    assert app.get(f"{E}/intro", headers=bearer(brief.secret)).status_code == 200
    time.sleep(1.1)
    assert app.get(f"{E}/intro", headers=bearer(brief.secret)).status_code == 401


def test_anonymous_callers_read_live_content_only_when_allowed(data: Path) -> None:
    token_for(data, {"*": ["admin"]})
    with serve(data, anonymous_read=True) as anonymous:
        live = anonymous.get(f"{E}/intro")
        assert live.status_code == 200 and live.json()["title"] == "Hello"
        for method, path, body in ROUTES["preview"] + ROUTES["write"]:
            assert call(anonymous, method, path, body, {}) == 401, (method, path)
    with serve(data) as closed:
        assert closed.get(f"{E}/intro").status_code == 401


def test_a_token_never_sees_less_than_an_anonymous_caller(data: Path) -> None:
    """Issue 20: with anonymous reading on, a token scoped to another repository was told `demo`
    did not exist, while a caller with no token at all could read it."""
    token_for(data, {"*": ["admin"]})
    elsewhere = bearer(token_for(data, {"other": ["write"]}, who=GRACE))
    with serve(data, anonymous_read=True) as client:
        for path in (f"{E}/intro", E, "/repos/demo"):
            assert client.get(path).status_code == 200, path
            assert client.get(path, headers=elsewhere).status_code == 200, path
        assert client.get(f"{E}/intro", headers=elsewhere).json()["title"] == "Hello"
        # what anonymous callers may not do, the token may not either: no draft through it
        r = client.get(f"{E}/intro?state=draft", headers=elsewhere)
        assert r.status_code == 403 and r.json()["required_scope"] == "preview"
    with serve(data) as closed:
        assert closed.get(f"{E}/intro", headers=elsewhere).status_code == 404


def test_without_credentials_only_loopback_callers_are_served(data: Path) -> None:
    with serve(data) as local:
        assert local.get(f"{E}/intro?state=draft").status_code == 200
    with TestClient(create_app(Settings(data_dir=data, load_samples=False)), client=("203.0.113.9", 4000)) as remote:
        r = remote.get(f"{E}/intro")
        assert r.status_code == 403 and r.json()["type"].endswith("loopback-only")
    token = token_for(data, {"demo": ["read"]})
    with TestClient(create_app(Settings(data_dir=data, load_samples=False)), client=("203.0.113.9", 4000)) as remote:
        assert remote.get(f"{E}/intro", headers=bearer(token)).status_code == 200


def test_a_relayed_request_never_gets_the_no_credentials_shortcut(data: Path) -> None:
    # A proxy on this machine reaches us from loopback; what it relays came from anywhere.
    with serve(data) as local:
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            for sent in ("203.0.113.9", "127.0.0.1", "for=127.0.0.1"):
                r = local.get(f"{E}/intro", headers={header: sent})
                assert r.status_code == 403 and r.json()["type"].endswith("loopback-only"), (header, sent)
        assert local.get(f"{E}/intro").status_code == 200


def test_gitstore_serve_believes_forwarding_headers_only_from_configured_proxies(data: Path, tmp_path: Path) -> None:
    token = token_for(data, {"demo": ["read"]})
    for trusted, shown in (("", "127.0.0.1:"), ("127.0.0.1", "203.0.113.9:")):
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        env = os.environ | {"GITSTORE_TRUSTED_PROXIES": trusted, "GITSTORE_SAMPLES": "0", "GITSTORE_HOUSEKEEPING": "0"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gitstore.cli", "serve", "--data", str(data), "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            url = f"http://127.0.0.1:{port}/repos/demo/entities/intro"
            answered = None
            for _ in range(600):  # until it listens
                try:
                    answered = httpx.get(url, headers=bearer(token) | {"X-Forwarded-For": "203.0.113.9"}, timeout=5)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()
                    time.sleep(0.05)
            assert answered is not None and answered.status_code == 200
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        [line] = [line for line in log.read_text().splitlines() if "GET /repos/demo/entities/intro" in line]
        assert shown in line, (trusted, line)


def test_admin_endpoints_issue_list_and_revoke_tokens(data: Path, app: TestClient) -> None:
    admin = bearer(token_for(data, {"*": ["admin"]}))
    assert app.get("/admin/tokens", headers=with_scopes(data, "admin")).status_code == 403  # admin of one repo
    r = app.post(
        "/admin/tokens",
        json={"name": "Editor", "email": "ed@example.org", "scopes": {"demo": ["write"]}},
        headers=admin,
    )
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    issued = r.json()
    assert app.put(f"{E}/from-admin-token", json=PAGE, headers=bearer(issued["token"])).status_code == 201
    listed = app.get("/admin/tokens", headers=admin).text
    assert issued["id"] in listed and issued["token"] not in listed and "hash" not in listed
    bad = app.post("/admin/tokens", json={"name": "X", "email": "x@y.z", "scopes": {"demo": ["root"]}}, headers=admin)
    assert bad.status_code == 422
    assert app.delete(f"/admin/tokens/{issued['id']}", headers=admin).status_code == 204
    assert app.get(f"{E}/intro", headers=bearer(issued["token"])).status_code == 401


def test_creating_a_repository_needs_admin_on_it(data: Path, app: TestClient) -> None:
    assert app.post("/repos", json={"name": "new"}, headers=with_scopes(data, "write")).status_code == 403
    assert app.post("/repos", json={"name": "new"}, headers=with_scopes(data, "admin", repo="new")).status_code == 201


def _client(app: TestClient, data: Path, scopes: dict[str, list[str]]) -> tuple[str, str]:
    admin = bearer(token_for(data, {"*": ["admin"]}))
    body = {"client_id": "studio", "name": "Studio", "email": "studio@example.org", "scopes": scopes}
    created = app.post("/admin/clients", json=body, headers=admin).json()
    return created["client_id"], created["client_secret"]


def _token_request(app: TestClient, form: dict[str, str], basic: tuple[str, str] | None = None) -> object:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    return app.post("/oauth/token", content="&".join(f"{k}={v}" for k, v in form.items()), headers=headers)


def test_oauth_client_credentials_give_a_short_lived_token_with_the_clients_scopes(data: Path, app: TestClient) -> None:
    client_id, secret = _client(app, data, {"demo": ["write"]})
    r = _token_request(app, {"grant_type": "client_credentials"}, basic=(client_id, secret))
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"  # type: ignore[attr-defined]
    grant = r.json()  # type: ignore[attr-defined]
    assert grant["token_type"] == "Bearer" and 0 < grant["expires_in"] <= 900
    assert grant["scope"] == "demo:read demo:preview demo:write"
    token = bearer(grant["access_token"])
    assert app.put(f"{E}/via-oauth", json=PAGE, headers=token).status_code == 201
    assert app.post(f"{E}/via-oauth/publish", headers=token).status_code == 403
    author = git(data / "demo.git", "log", "-1", "--format=%an <%ae>", "refs/drafts/via-oauth").strip()
    assert author == "Studio <studio@example.org>"

    # A narrower scope may be asked for (form credentials this time), never a wider one.
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": "demo:read"}
    narrow = _token_request(app, form).json()  # type: ignore[attr-defined]
    assert narrow["scope"] == "demo:read"
    assert app.get(f"{E}/intro?state=draft", headers=bearer(narrow["access_token"])).status_code == 403
    wider = _token_request(app, form | {"scope": "other:read"})
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"  # type: ignore[attr-defined]

    # Removing the client ends its tokens at once.
    admin = bearer(token_for(data, {"*": ["admin"]}))
    assert app.delete(f"/admin/clients/{client_id}", headers=admin).status_code == 204
    assert app.get(f"{E}/intro", headers=token).status_code == 401


def test_oauth_refuses_bad_clients_grants_and_forged_tokens(data: Path, app: TestClient) -> None:
    client_id, secret = _client(app, data, {"demo": ["read"]})
    wrong = _token_request(app, {"grant_type": "client_credentials"}, basic=(client_id, "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"  # type: ignore[attr-defined]
    grant = _token_request(app, {"grant_type": "password"}, basic=(client_id, secret))
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"  # type: ignore[attr-defined]

    key = Credentials(default_path(data)).signing_key()
    now = int(time.time())
    claims = {"iss": "gitstore", "aud": "gitstore", "sub": client_id, "iat": now, "exp": now + 60, "scope": "*:admin"}
    # Signed with our key but claiming more than the client holds: honoured only as far as the
    # client's own grants go.
    escalated = jwt.encode(claims, key, algorithm="HS256")
    assert app.get(f"{E}/intro", headers=bearer(escalated)).status_code == 401
    partly = jwt.encode(claims | {"scope": "demo:read demo:write"}, key, algorithm="HS256")
    assert app.get(f"{E}/intro", headers=bearer(partly)).status_code == 200
    assert app.put(f"{E}/x", json=PAGE, headers=bearer(partly)).status_code == 403
    expired = jwt.encode(claims | {"exp": now - 5, "scope": "demo:read"}, key, algorithm="HS256")
    forged = jwt.encode(claims | {"scope": "demo:read"}, b"not our key" * 4, algorithm="HS256")
    unsigned = jwt.encode(claims | {"scope": "demo:read"}, None, algorithm="none")
    for token in (expired, forged, unsigned):
        assert app.get(f"{E}/intro", headers=bearer(token)).status_code == 401


# Read when the module is imported, maybe many minutes before a case runs: the times of the wrong
# claims below stay a day clear of expiring, so that each is refused for its type alone.
_NOW = int(time.time())
_DROP = object()  # a claim left out of the token
# Claims of a signed token, made with the server's own key, that are not what it issues: each
# replaces or drops one claim of an otherwise valid token for a client holding demo:write.
WRONG_CLAIMS: dict[str, dict[str, object]] = {
    "scope as a list": {"scope": ["demo:write"]},
    "scope as a number": {"scope": 7},
    "scope as an object": {"scope": {"demo": "write"}},
    "scope null": {"scope": None},
    "scope missing": {"scope": _DROP},
    "exp as a numeric string": {"exp": str(_NOW + 86400)},
    "exp as 1e30": {"exp": 1e30},
    "exp as 10**30": {"exp": 10**30},
    "exp as a fraction": {"exp": _NOW + 86400.5},
    "exp true": {"exp": True},
    "exp as a list": {"exp": [_NOW + 86400]},
    "exp missing": {"exp": _DROP},
    "iat as a numeric string": {"iat": str(_NOW)},
    "iat as 1e30": {"iat": 1e30},
    "iat false": {"iat": False},
    "iat missing": {"iat": _DROP},
    "nbf as a numeric string": {"nbf": str(_NOW)},
    "nbf as -1e30": {"nbf": -1e30},
    "nbf false": {"nbf": False},
    "sub as a list": {"sub": ["studio"]},
    "sub as a number": {"sub": 7},
    "sub missing": {"sub": _DROP},
    "iss as a list": {"iss": ["gitstore"]},
    "iss as a number": {"iss": 7},
    "iss missing": {"iss": _DROP},
    "aud as a number": {"aud": 7},
    "aud as an object": {"aud": {"gitstore": True}},
    "aud as a list holding a number": {"aud": ["gitstore", 7]},
    "aud missing": {"aud": _DROP},
    "jti as a number": {"jti": 7},
}


@pytest.mark.parametrize("case", WRONG_CLAIMS)
def test_signed_tokens_with_claims_of_the_wrong_type_are_401(data: Path, app: TestClient, case: str) -> None:
    client_id, _ = _client(app, data, {"demo": ["write"]})
    now = int(time.time())
    valid = {"iss": "gitstore", "aud": "gitstore", "sub": client_id, "iat": now, "exp": now + 600}
    claims = valid | {"scope": "demo:write", "jti": "0123456789abcdef"} | WRONG_CLAIMS[case]
    key = Credentials(default_path(data)).signing_key()
    # Through JWS, not jwt.encode, which refuses to sign some of these.
    payload = json.dumps({k: v for k, v in claims.items() if v is not _DROP}).encode()
    token = bearer(jwt.api_jws.encode(payload, key, algorithm="HS256"))
    before = git(data / "demo.git", "for-each-ref")

    for r in (app.get(f"{E}/intro", headers=token), app.put(f"{E}/taken", json=PAGE, headers=token)):
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, r.text
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="gitstore", error="invalid_token"'
    assert git(data / "demo.git", "for-each-ref") == before
    # The same token with valid claims is honoured: the refusal was the claim, not the client.
    fine = bearer(jwt.encode(valid | {"scope": "demo:write"}, key, algorithm="HS256"))
    assert app.get(f"{E}/intro", headers=fine).status_code == 200


def test_rate_limits_are_per_token_with_retry_after(data: Path) -> None:
    busy, calm = with_scopes(data, "read"), with_scopes(data, "read")
    with serve(data, rate_limit="5/minute") as app:
        statuses = [app.get(f"{E}/intro", headers=busy).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        r = app.get(f"{E}/intro", headers=busy)
        assert r.headers["content-type"] == PROBLEM and 1 <= int(r.headers["Retry-After"]) <= 60
        assert app.get(f"{E}/intro", headers=calm).status_code == 200


def test_cors_allows_only_the_configured_origins(data: Path) -> None:
    preflight = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,if-match"}
    with serve(data, cors_origins=("https://studio.example.org",)) as app:
        ok = app.options(f"{E}/intro", headers=preflight | {"Origin": "https://studio.example.org"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://studio.example.org"
        other = app.options(f"{E}/intro", headers=preflight | {"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with serve(data) as app:  # no allowlist: no CORS headers at all
        r = app.get(f"{E}/intro", headers={"Origin": "https://studio.example.org"})
        assert "access-control-allow-origin" not in r.headers


def test_docs_can_be_turned_off(data: Path) -> None:
    with serve(data, docs=False) as app:
        assert app.get("/docs").status_code == 404 and app.get("/openapi.json").status_code == 404
    with serve(data) as app:
        assert app.get("/docs").status_code == 200 and app.get("/openapi.json").status_code == 200

"""Issue 18: what a reader (anonymous, or a token with only `read`) can learn over REST is
exactly what is live. Every GET route of the OpenAPI document is walked with every kind of key,
and the answers must hold no trace of a draft: not its title, body, key or commit, not the
editors' e-mail addresses, and a key that exists only as a draft answers exactly what a key
that never existed answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import Author, ContentRepository, Store, content
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.publishing.api import PublishTarget
from tests.conftest import bearer, git, token_for

EDITOR = Author("Erin Editor", "erin.secret@editors.example")
MARK = "draftonly"  # in every draft-only title, body and key, and in nothing live

LIVE_KEYS = ["live-page", "pending", "doomed", "box", "kept"]
DRAFT_ONLY_KEYS = [f"{MARK}-page", f"{MARK}-member", f"{MARK}-deleted"]
UNKNOWN = "no-such-thing"  # same length as none of them: bodies are compared with the key swapped
NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _build(repo: ContentRepository) -> None:
    def put(key: str, doc: dict[str, object]) -> None:
        content.put_draft(repo, key, {"type": "page", **doc}, author=EDITOR)

    def publish(*keys: str) -> None:
        content.publish(repo, [PublishTarget(k) for k in keys], author=EDITOR)

    # Never published: its title, body, base_path and key are draft-only.
    put(f"{MARK}-page", {"title": f"{MARK} title", "base_path": f"/{MARK}-path", "fields": {"body": f"{MARK} body"}})
    # A live page whose published links name the never-published one.
    put("live-page", {"title": "Live page", "base_path": "/live", "links": {"related": [f"{MARK}-page"]}})
    # Live, with a pending draft.
    put("pending", {"title": "Pending, live", "base_path": "/pending"})
    # Live, deleted in draft.
    put("doomed", {"title": "Doomed, live", "base_path": "/doomed"})
    # A live container; its draft adds a never-published member.
    put("kept", {"title": "Kept member"})
    content.put_draft(repo, "box", {"type": "container", "title": "Box", "members": [{"key": "kept"}]}, author=EDITOR)
    publish("live-page", "pending", "doomed", "box")

    content.patch_draft(repo, "pending", {"title": f"{MARK} pending title"}, author=EDITOR)
    content.delete_entity(repo, "doomed", author=EDITOR)
    put(f"{MARK}-member", {"title": f"{MARK} member"})
    content.patch_draft(repo, "box", {"members": [{"key": "kept"}, {"key": f"{MARK}-member"}]}, author=EDITOR)
    # Created and deleted without ever being published.
    put(f"{MARK}-deleted", {"title": f"{MARK} deleted"})
    content.delete_entity(repo, f"{MARK}-deleted", author=EDITOR)


def _draft_only_commits(data: Path) -> set[str]:
    """Every commit a reader must never see: the draft branches' commits that were never live,
    and the `draft` branch itself."""
    path = data / "demo.git"
    repo = Store(data).repository("demo")
    head = folded_draft_head(repo)
    assert head is not None
    found = set(git(path, "rev-list", str(head)).split())
    refs = git(path, "for-each-ref", "--format=%(refname)", "refs/drafts/").split()
    for ref in refs:
        key = ref.removeprefix("refs/drafts/")
        published = git(path, "for-each-ref", "--format=%(objectname)", f"refs/published/{key}").strip()
        found |= set(git(path, "rev-list", ref, *([f"^{published}"] if published else [])).split())
    live = set(git(path, "rev-list", "refs/heads/main", "--glob=refs/published/*").split())
    assert len(found - live) >= 8  # the drafts above, and `draft`'s own commits
    return found - live


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("readers") / "data"
    _build(Store(data).create_repository("demo"))
    token_for(data, {"*": ["admin"]})  # credentials exist: anonymous callers are readers, not the local user
    return data


@pytest.fixture(scope="module")
def secrets(data: Path) -> list[str]:
    return [MARK, EDITOR.email, *_draft_only_commits(data)]


@pytest.fixture(scope="module", params=["anonymous", "read token"])
def reader(request: pytest.FixtureRequest, data: Path) -> Iterator[TestClient]:
    client = TestClient(create_app(Settings(data_dir=data, load_samples=False, anonymous_read=True, rate_limit="")))
    if request.param == "read token":
        client.headers.update(bearer(token_for(data, {"demo": ["read"]}, who=Author("Rita Reader", "rita@x.example"))))
    with client:
        yield client


# Values for each path parameter, and the query strings worth asking each route with.
PARAMS = {
    "key": [*LIVE_KEYS, *DRAFT_ONLY_KEYS, UNKNOWN],
    "content_id": [*LIVE_KEYS, *DRAFT_ONLY_KEYS, UNKNOWN],
    "base_path": ["live", "pending", f"{MARK}-path", UNKNOWN],
    "type": ["container", "page"],
    "name": ["related", "parent"],
    "hook_id": [UNKNOWN],  # webhooks need admin: a reader is refused before any is looked up
}
QUERIES = {
    "/repos/{repo}/entities": ["", "?as_of=" + NOW, "?state=draft", "?has_unpublished_changes=true"],
    "/repos/{repo}/entities/{key}": ["", "?as_of=" + NOW, "?state=draft", "?version=1"],
    "/repos/{repo}/entities/{key}/tree": ["", "?as_of=" + NOW, "?state=draft"],
    "/repos/{repo}/entities/{key}/expanded-links": ["", "?state=draft"],
    "/repos/{repo}/entities/{key}/dependents": ["", "?state=draft"],
    "/repos/{repo}/events": ["", "?after=latest", "?limit=1"],
    "/repos/{repo}/export": ["?format=ndjson&state=draft"],  # what is live: test_an_export_...
}


def _requests(client: TestClient) -> Iterator[tuple[str, str | None, dict[str, str]]]:
    """(url, the key it names or None, extra headers) for every GET the OpenAPI document has."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    gets = [template for template, operations in spec["paths"].items() if "get" in operations]
    assert len([t for t in gets if "{repo}" in t]) >= 15
    for template in gets:
        if template.startswith("/admin") or template.startswith("/git/"):
            continue  # admin routes refuse readers outright; git is the live copy's own test
        names = re.findall(r"\{([^}:]+)(?::path)?\}", template)
        variable = [n for n in names if n != "repo"]
        assert len(variable) <= 1, template
        values: list[str | None] = list(PARAMS[variable[0]]) if variable else [None]
        for value in values:
            url = template.replace("{repo}", "demo")
            if value is not None:
                url = re.sub(r"\{[^}]+\}", value, url.replace("{repo}", "demo"))
            for query in QUERIES.get(template, [""]):
                yield url + query, value, {}
    yield "/repos/demo/events?wait=0.2", None, {"Accept": "text/event-stream"}


def _answer(client: TestClient, url: str, headers: dict[str, str]) -> tuple[int, str, str]:
    r = client.get(url, headers=headers, follow_redirects=False)
    shown = "\n".join(f"{k}: {v}" for k, v in r.headers.items() if k not in ("date", "content-length"))
    return r.status_code, shown, r.text


def test_no_reader_answer_holds_a_trace_of_a_draft(reader: TestClient, secrets: list[str]) -> None:
    seen = 0
    for url, key, headers in _requests(reader):
        status, shown, body = _answer(reader, url, headers)
        assert status < 500, (url, status, body)
        # Asking about a draft-only key echoes the key back, as asking about any key does.
        where = (shown + body).replace(key, "") if key else shown + body
        for secret in secrets:
            assert secret not in where, (url, secret, status, body[:2000])
        assert "has_unpublished_changes" not in body, (url, body[:2000])
        seen += 1
    assert seen > 150


def test_a_draft_only_key_answers_what_an_unknown_key_answers(reader: TestClient) -> None:
    compared = 0
    for url, key, headers in _requests(reader):
        if key != UNKNOWN:
            continue
        unknown = _answer(reader, url, headers)
        assert unknown[0] in (200, 401, 403, 404), (url, unknown)
        for draft_only in DRAFT_ONLY_KEYS + [f"{MARK}-path"]:
            other = _answer(reader, url.replace(UNKNOWN, draft_only), headers)
            swapped = tuple(part.replace(draft_only, UNKNOWN) if isinstance(part, str) else part for part in other)
            assert swapped == unknown, (url, draft_only, other, unknown)
            compared += 1
    assert compared > 40


def test_repositories_show_readers_no_draft_head(reader: TestClient) -> None:
    repo = reader.get("/repos/demo").json()
    assert repo["draft"] is None and repo["main"] is not None
    assert reader.get("/repos").json()["items"] == [repo]


def test_readers_see_the_editors_name_but_never_their_address(reader: TestClient) -> None:
    entity = reader.get("/repos/demo/entities/pending").json()
    assert entity["author"] == {"name": EDITOR.name}
    assert reader.get("/repos/demo/publish-log").json()["items"][0]["author"] == {"name": EDITOR.name}
    assert {e["author"]["name"] for e in reader.get("/repos/demo/events").json()["items"]} == {EDITOR.name}


def test_public_authors_none_shows_readers_no_author_at_all(data: Path) -> None:
    settings = Settings(data_dir=data, load_samples=False, anonymous_read=True, rate_limit="", public_authors="none")
    with TestClient(create_app(settings)) as anonymous:
        for url in ["/repos/demo/entities/pending", "/repos/demo/entities", "/repos/demo/publish-log"]:
            body = anonymous.get(url).text
            assert EDITOR.name not in body and EDITOR.email not in body, (url, body)
        # The stream holds for `wait` seconds after what is there (30 by default): one is enough here.
        streamed = anonymous.get("/repos/demo/events?wait=1", headers={"Accept": "text/event-stream"}).text
        assert "data:" in streamed and EDITOR.name not in streamed
        assert (
            EDITOR.name
            not in anonymous.get("/repos/demo/entities/pending", headers={"Accept": "text/event-stream"}).text
        )


def test_editors_still_see_everything(data: Path) -> None:
    """Callers with preview keep what they had: draft heads, unpublished changes, addresses."""
    editor = bearer(token_for(data, {"demo": ["preview"]}))
    with TestClient(
        create_app(Settings(data_dir=data, load_samples=False, anonymous_read=True, rate_limit=""))
    ) as client:
        assert client.get("/repos/demo", headers=editor).json()["draft"] is not None
        pending = client.get("/repos/demo/entities/pending", headers=editor).json()
        assert pending["has_unpublished_changes"] is True
        assert pending["author"] == {"name": EDITOR.name, "email": EDITOR.email}
        assert client.get("/repos/demo/entities/live-page", headers=editor).json()["links"] == {
            "related": [f"{MARK}-page"]
        }
        r = client.get(f"/repos/demo/entities/{MARK}-page", headers=editor)
        assert r.status_code == 404 and "never been published" in r.json()["detail"]
        assert client.get(f"/repos/demo/entities/{MARK}-member/containers", headers=editor).json()["items"]


def test_an_export_of_what_is_live_names_no_draft_only_key(reader: TestClient) -> None:
    r = reader.get("/repos/demo/export?format=ndjson")
    assert r.status_code == 200 and MARK not in r.text


def test_a_readers_cursor_does_not_move_with_drafts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo = Store(data).create_repository("demo")
    _build(repo)
    token_for(data, {"*": ["admin"]})
    with TestClient(create_app(Settings(data_dir=data, load_samples=False, anonymous_read=True))) as anonymous:
        before = anonymous.get("/repos/demo/events?after=latest").json()["cursor"]
        content.patch_draft(repo, "pending", {"title": f"{MARK} again"}, author=EDITOR)
        content.put_draft(repo, f"{MARK}-more", {"type": "page", "title": MARK}, author=EDITOR)
        assert anonymous.get("/repos/demo/events?after=latest").json()["cursor"] == before
        assert anonymous.get(f"/repos/demo/events?after={before}").json() == {"items": [], "cursor": before}

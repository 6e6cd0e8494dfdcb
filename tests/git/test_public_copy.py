"""What a reader can fetch is exactly what is live: the outside test's reproduction, run with the
real git client against a real server, over both protocol versions, with and without `refs/*`."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.conftest import bearer, object_bytes, object_ids, token_for
from tests.git.conftest import Server, run_git
from tests.publishing.test_live_mirror import published_states

MARKERS = (
    "LEAKV1TITLE",
    "LEAKV1BODY",
    "DISCARDSECRETTITLE",
    "DISCARD2SECRET",
    "NEVERLIVESECRET",
    "GONEBODYSECRET",
    "VANISHEDBODYSECRET",
)


class Client:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.token = token_for(server.data, {"*": ["admin"]})

    def call(self, method: str, path: str, body: object = None, *, headers: dict[str, str] | None = None) -> object:
        data = orjson.dumps(body) if body is not None else None
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            f"{self.server.url}/repos/site{path}",
            data=data,
            method=method,
            headers={**bearer(self.token), **({"Content-Type": kind} if data else {}), **(headers or {})},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())


def make_history(client: Client) -> None:
    """The outside test's steps, over REST, plus a never-published draft and gone/vanished pages."""
    c = client.call
    first = c(
        "PUT",
        "/entities/hist-leak",
        {"type": "html", "title": "LEAKV1TITLE", "fields": {"html": "<p>LEAKV1BODY</p>\n"}},
    )
    c(
        "PUT",
        "/entities/hist-leak",
        {"type": "html", "title": "Clean", "fields": {"html": "<p>Clean</p>\n"}},
        headers={"If-Match": f'"{first["commit"]}"'},
    )  # type: ignore[index]
    c("POST", "/entities/hist-leak/publish")
    for key in ("cheatsheet", "video", "gone-page", "vanished-page"):
        body = "GONEBODYSECRET" if key == "gone-page" else "VANISHEDBODYSECRET" if key == "vanished-page" else key
        c("PUT", f"/entities/{key}", {"type": "html", "title": key, "fields": {"html": f"<p>{body}</p>\n"}})
        c("POST", f"/entities/{key}/publish")
    c("PATCH", "/entities/cheatsheet", {"title": "DISCARDSECRETTITLE"})
    c("POST", "/entities/cheatsheet/unpublish", {"type": "withdrawn", "explanation": "x", "discard_draft": True})
    c("PATCH", "/entities/video", {"title": "DISCARD2SECRET"})
    c("POST", "/entities/video/discard")
    c("PATCH", "/entities/video", {"title": "Video ok"})
    c("POST", "/entities/video/publish")
    c("POST", "/entities/gone-page/unpublish", {"type": "gone", "explanation": "Replaced"})
    c("POST", "/entities/vanished-page/unpublish", {"type": "vanish"})
    c("PUT", "/entities/never-live", {"type": "html", "title": "NEVERLIVESECRET"})


@pytest.mark.parametrize("protocol", [0, 2])
@pytest.mark.parametrize("refspecs", [(), ("refs/*:refs/remotes/all/*",), ("refs/published/*:refs/published/*",)])
def test_an_anonymous_clone_holds_nothing_that_was_never_live(
    reader_server: Server, tmp_path: Path, protocol: int, refspecs: tuple[str, ...]
) -> None:
    make_history(Client(reader_server))
    checkout = tmp_path / "anon"
    url = reader_server.clone_url(live=True)
    run_git("-c", f"protocol.version={protocol}", "clone", "-q", url, str(checkout))
    if refspecs:
        run_git("-c", f"protocol.version={protocol}", "fetch", "-q", "origin", *refspecs, cwd=checkout)
    found = object_bytes(checkout)
    for marker in ("LEAKV1TITLE", "LEAKV1BODY", "DISCARDSECRETTITLE", "DISCARD2SECRET", "NEVERLIVESECRET"):
        assert marker.encode() not in found, marker
    # gone and vanished content left the current tree (it was live once, so history keeps it)
    tree = run_git("grep", "-l", "-e", "GONEBODYSECRET", "-e", "VANISHEDBODYSECRET", "main", cwd=checkout, check=False)
    assert tree.stdout == ""
    # every object belongs to a published state: main's commits, trees and README, or an
    # entity version that was live
    objects = object_ids(checkout)
    commits = set(run_git("rev-list", "origin/main", cwd=checkout).stdout.split())
    aggregate = {
        line.split()[2]
        for c in commits
        for line in run_git("ls-tree", "-t", "-r", c, cwd=checkout).stdout.splitlines()
        if line.split()[3].count("/") <= 1
    } | {run_git("rev-parse", f"{c}^{{tree}}", cwd=checkout).stdout.strip() for c in commits}
    unpublishing_notices = {
        line.split()[2]
        for line in run_git("ls-tree", "-r", "origin/main", cwd=checkout).stdout.splitlines()
        if line.endswith("unpublishing.json")
    }
    assert objects - commits - aggregate - unpublishing_notices <= published_states(reader_server.repo)
    run_git("fsck", "--strict", cwd=checkout)


def test_the_full_repository_challenges_and_keeps_everything_for_the_preview_right(
    reader_server: Server, tmp_path: Path
) -> None:
    client = Client(reader_server)
    make_history(client)
    anonymous = run_git("clone", "-q", reader_server.clone_url(), str(tmp_path / "anon"), check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    url = reader_server.clone_url().replace("http://", f"http://git:{client.token}@")
    checkout = tmp_path / "full"
    run_git("clone", "-q", url, str(checkout))
    run_git("fetch", "-q", "origin", "refs/drafts/*:refs/drafts/*", "refs/published/*:refs/published/*", cwd=checkout)
    found = object_bytes(checkout)
    for marker in MARKERS:
        assert marker.encode() in found, marker
    # publishing fast-forwards a published ref there, as before
    published = run_git("rev-parse", "refs/published/hist-leak", cwd=checkout).stdout.strip()
    assert run_git("merge-base", "--is-ancestor", published, "refs/drafts/hist-leak", cwd=checkout).returncode == 0


@pytest.mark.parametrize("protocol", [0, 2])
def test_after_an_erasure_no_fetch_from_either_copy_returns_the_bytes(
    reader_server: Server, tmp_path: Path, protocol: int
) -> None:
    client = Client(reader_server)
    make_history(client)
    client.call("PATCH", "/entities/hist-leak", {"fields": {"html": "<p>ERASEMEBODY</p>\n"}})
    client.call("POST", "/entities/hist-leak/publish")
    old_tip = client.call("GET", "/entities/hist-leak?state=draft")["commit"]  # type: ignore[index]
    full_url = reader_server.clone_url().replace("http://", f"http://git:{client.token}@")
    before = tmp_path / "before"
    run_git("clone", "-q", "--mirror", full_url, str(before))  # someone's copy from before: not ours to clean
    erased_blob = run_git("rev-parse", f"refs/drafts/hist-leak:{'fields/html.txt'}", cwd=before).stdout.strip()

    record = client.call("POST", "/entities/hist-leak/erase", {"reason": "Takedown notice 42"})
    assert record["key"] == "hist-leak" and record["by"]["name"] == "Ada Lovelace"  # type: ignore[index]
    assert client.call("GET", "/erasures")[0]["reason"] == "Takedown notice 42"  # type: ignore[index]

    full = tmp_path / "full"
    run_git("-c", f"protocol.version={protocol}", "clone", "-q", "--mirror", full_url, str(full))
    live = tmp_path / "live"
    run_git(
        "-c", f"protocol.version={protocol}", "clone", "-q", "--mirror", reader_server.clone_url(live=True), str(live)
    )
    for copy in (full, live):
        found = object_bytes(copy)
        assert b"ERASEMEBODY" not in found and b"LEAKV1BODY" not in found
        for sha in (erased_blob, old_tip):
            fetch = run_git("-c", f"protocol.version={protocol}", "fetch", "origin", sha, cwd=copy, check=False)
            assert fetch.returncode != 0, sha
        run_git("fsck", "--strict", cwd=copy)
    # an incremental fetch into the old copy moves the rewritten refs and brings no erased byte
    run_git("-c", f"protocol.version={protocol}", "fetch", "-q", "--prune", "origin", cwd=before)
    assert run_git("rev-parse", "refs/drafts/hist-leak", cwd=before).stdout.strip() != old_tip

"""git clone / fetch / diff / blame with the real git client against a served repository."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gitstore import Author, ContentRepository, content
from gitstore.entities import api as entities
from gitstore.publishing import api as publishing
from gitstore.storage.api import entity_path
from tests.conftest import ADA, GRACE
from tests.git.conftest import Server, run_git

TOM = Author("Tom Evans", "tom@example.org")


def seed(repo: ContentRepository) -> None:
    """Live pages, some with unpublished changes, one never published."""
    body = "Line one by Ada.\nLine two by Ada.\nLine three by Ada.\n"
    content.put_draft(
        repo, "guide", {"type": "guide", "title": "Guide", "base_path": "/guide", "fields": {"body": body}}, author=ADA
    )
    content.put_draft(repo, "about", {"type": "page", "title": "About", "links": {"related": ["guide"]}}, author=ADA)
    content.put_draft(repo, "contact", {"type": "page", "title": "Contact", "locale": "cy"}, author=TOM)
    content.publish_all_drafts(repo, author=ADA)
    content.patch_draft(
        repo, "guide", {"fields": {"body": "Line one by Ada.\nLine two by Grace.\nLine three by Ada.\n"}}, author=GRACE
    )
    content.put_draft(repo, "secret-plan", {"type": "page", "title": "Not yet announced"}, author=TOM)


def clone(server: Server, dest: Path, protocol: int, *extra: str, live: bool = False) -> Path:
    run_git("-c", f"protocol.version={protocol}", "clone", "-q", *extra, server.clone_url(live=live), str(dest))
    return dest


def read_checkout(checkout: Path, key: str) -> dict[str, object]:
    folder = checkout / entity_path(key)
    body = orjson.loads((folder / "entity.json").read_bytes())
    for text in (folder / "fields").glob("*.txt") if (folder / "fields").is_dir() else []:
        body["fields"][text.stem] = text.read_text()
    return body


@pytest.mark.parametrize("protocol", [0, 2])
def test_clone_checks_out_main_with_every_live_entity_as_rest_shows_it(
    server: Server, tmp_path: Path, protocol: int
) -> None:
    seed(server.repo)
    checkout = clone(server, tmp_path / "clone", protocol)
    live = server.get("/repos/site/entities?limit=500")["items"]  # type: ignore[index]
    assert sorted(e["key"] for e in live) == ["about", "contact", "guide"]
    for entity in live:
        files = read_checkout(checkout, entity["key"])
        for name in ("type", "title", "locale", "base_path", "fields", "links"):
            assert files[name] == entity[name], (entity["key"], name)
    assert not (checkout / entity_path("secret-plan")).exists()
    log = run_git("log", "--format=%an|%s", "main", cwd=checkout).stdout.splitlines()
    assert log == ["Ada Lovelace|Publish about, contact, guide"]
    branches = run_git("branch", "-r", cwd=checkout).stdout.split()
    assert "origin/draft" in branches and not any("drafts/" in b for b in branches)


def test_git_diff_main_draft_lists_exactly_the_entities_with_unpublished_changes(
    server: Server, tmp_path: Path
) -> None:
    seed(server.repo)
    checkout = clone(server, tmp_path / "clone", 2)
    changed = run_git("diff", "--name-only", "origin/main", "origin/draft", cwd=checkout).stdout.split()
    keys = sorted({path.split("/")[1] for path in changed})
    pending = server.get("/repos/site/entities?state=draft&has_unpublished_changes=true")["items"]  # type: ignore[index]
    assert keys == sorted(e["key"] for e in pending) == ["guide", "secret-plan"]
    patch = run_git("log", "-p", "-1", "origin/draft", "--", entity_path("secret-plan"), cwd=checkout).stdout
    assert "Create secret-plan" in patch and '"title": "Not yet announced"' in patch


def test_git_blame_attributes_each_line_of_a_field_file_to_its_author(server: Server, tmp_path: Path) -> None:
    seed(server.repo)
    checkout = clone(server, tmp_path / "clone", 2)
    blame = run_git(
        "blame", "--line-porcelain", "origin/draft", "--", f"{entity_path('guide')}/fields/body.txt", cwd=checkout
    ).stdout
    authors = [line[len("author ") :] for line in blame.splitlines() if line.startswith("author ")]
    assert authors == ["Ada Lovelace", "Grace Hopper", "Ada Lovelace"]


def test_per_entity_histories_come_on_request(server: Server, tmp_path: Path) -> None:
    seed(server.repo)
    checkout = clone(server, tmp_path / "clone", 2)
    run_git("fetch", "-q", "origin", "refs/drafts/*:refs/drafts/*", "refs/published/*:refs/published/*", cwd=checkout)
    log = run_git("log", "--format=%an|%s", "refs/drafts/guide", cwd=checkout).stdout.splitlines()
    assert log == ["Grace Hopper|Update guide: fields.body", "Ada Lovelace|Create guide"]
    assert (
        run_git("rev-parse", "refs/published/guide", cwd=checkout).stdout.strip()
        == server.repo.index._db().execute("SELECT published_commit FROM entities WHERE key='guide'").fetchone()[0]
    )


def test_fetch_after_a_publish_brings_exactly_one_new_commit_on_main(server: Server, tmp_path: Path) -> None:
    seed(server.repo)
    checkout = clone(server, tmp_path / "clone", 2)
    before = run_git("rev-parse", "origin/main", cwd=checkout).stdout.strip()
    content.publish(server.repo, [publishing.PublishTarget("guide")], author=GRACE)
    run_git("fetch", "-q", "origin", cwd=checkout)
    new = run_git("rev-list", f"{before}..origin/main", cwd=checkout).stdout.split()
    assert len(new) == 1
    assert (
        run_git("log", "-1", "--format=%an|%s", "origin/main", cwd=checkout).stdout.strip()
        == "Grace Hopper|Publish guide version 2"
    )


def test_clone_with_transfer_fsck_objects_succeeds(server: Server, tmp_path: Path) -> None:
    seed(server.repo)
    clone(server, tmp_path / "clone", 2, "-c", "transfer.fsckObjects=true", "--mirror")


def test_push_is_refused_with_a_clear_message(server: Server, tmp_path: Path) -> None:
    seed(server.repo)
    checkout = clone(server, tmp_path / "clone", 2)
    (checkout / "hack.txt").write_text("x")
    run_git("add", "hack.txt", cwd=checkout)
    run_git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "hack", cwd=checkout)
    push = run_git("push", "origin", "HEAD:main", cwd=checkout, check=False)
    assert push.returncode != 0 and "403" in push.stderr
    assert "hack.txt" not in run_git("--git-dir", str(server.repo.path), "ls-tree", "-r", "--name-only", "main").stdout


@pytest.mark.parametrize("protocol", [0, 2])
def test_readers_without_the_draft_right_cannot_fetch_a_draft_object(
    reader_server: Server, tmp_path: Path, protocol: int
) -> None:
    seed(reader_server.repo)
    draft_sha = entities.get_entity(reader_server.repo, "secret-plan", state="draft").commit
    guide_draft = entities.get_entity(reader_server.repo, "guide", state="draft").commit
    checkout = clone(reader_server, tmp_path / "clone", protocol, live=True)
    assert run_git("branch", "-r", cwd=checkout).stdout.split() == ["origin/HEAD", "->", "origin/main", "origin/main"]
    for sha in (draft_sha, guide_draft):
        fetch = run_git("-c", f"protocol.version={protocol}", "fetch", "origin", sha, cwd=checkout, check=False)
        assert fetch.returncode != 0
        assert run_git("cat-file", "-e", sha, cwd=checkout, check=False).returncode != 0
    refs = run_git("-c", f"protocol.version={protocol}", "ls-remote", reader_server.clone_url(live=True)).stdout
    assert [line.split()[1] for line in refs.splitlines()] == ["HEAD", "refs/heads/main"]
    # what is live is all there
    assert read_checkout(checkout, "guide")["title"] == "Guide"
    # and the full repository's remote challenges instead of quietly serving less
    full = run_git("-c", f"protocol.version={protocol}", "ls-remote", reader_server.clone_url(), check=False)
    assert full.returncode != 0 and "could not read Username" in full.stderr


def test_dumb_http_is_refused(server: Server) -> None:
    import urllib.error
    import urllib.request

    for path in (
        "/git/site.git/HEAD",
        "/git/site.git/objects/info/packs",
        "/git/site.git/info/refs",
        "/git/live/site.git/HEAD",
        "/git/live/site.git/info/refs",
    ):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url + path, timeout=10)
        assert caught.value.code == 403
        caught.value.close()

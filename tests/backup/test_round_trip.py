"""`gitstore backup` then `gitstore restore`: the same refs, byte for byte, a clean `git fsck
--strict`, the index and the live-only copy rebuilt, and a server that serves what was there."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import orjson

from gitstore import ContentRepository, Store, content
from gitstore.erasure import erase
from gitstore.publishing.api import PublishTarget, sync_live_mirror
from tests.backup.conftest import backed_up, refs_of
from tests.conftest import ADA, bearer, fsck_strict, git, object_bytes, settle, token_for
from tests.serving import start_server
from tests.test_cli import gitstore


def test_a_restored_node_has_the_same_refs_and_serves_them(rich: ContentRepository, tmp_path: Path) -> None:
    data = rich.path.parent
    token = token_for(data, {"*": ["read", "preview"]})
    backups = tmp_path / "backups"
    report = backed_up(str(backups), data)
    assert report["parent"] is None and report["repositories"]["source"]["kind"] == "full"
    assert report["parts"] == ["credentials"]
    # The backup is plain git underneath: git itself reads the bundle.
    bundle = backups / report["id"] / "repos" / "source" / "objects.bundle"
    assert "refs/heads/main" in git(rich.path, "bundle", "list-heads", str(bundle))

    restored = tmp_path / "restored"
    done = gitstore("restore", str(backups), "--data", str(restored), "--json")
    assert done.returncode == 0, done.stderr
    answer = orjson.loads(done.stdout)
    assert answer["chain"] == [report["id"]] and answer["parts"] == ["credentials"]
    assert answer["repositories"]["source"]["entities"] == 13

    copy = restored / "source.git"
    assert refs_of(copy) == refs_of(rich.path)
    fsck_strict(copy)
    fsck_strict(copy / "gitstore" / "live.git")
    sync_live_mirror(rich)  # the service keeps it; here nothing did yet. The projection is deterministic:
    assert refs_of(copy / "gitstore" / "live.git") == refs_of(rich.path / "gitstore" / "live.git")
    assert (restored / "credentials.json").read_bytes() == (data / "credentials.json").read_bytes()
    assert not list(restored.glob(".restoring-*")), "the staging folder is gone"
    listed = gitstore("webhook", "list", "source", "--data", str(restored), "--json")
    assert [hook["url"] for hook in orjson.loads(listed.stdout)] == ["https://hooks.example.org/gitstore"]

    server, url = start_server(restored)
    try:
        # the token made before the backup still works: its hash came back with the credentials
        ask = urllib.request.Request(f"{url}/repos/source/entities/tax?state=draft", headers=bearer(token))
        with urllib.request.urlopen(ask, timeout=10) as response:
            assert orjson.loads(response.read())["title"] == "Tax (draft)"
        ask = urllib.request.Request(f"{url}/repos/source/entities/course/tree", headers=bearer(token))
        with urllib.request.urlopen(ask, timeout=10) as response:
            assert orjson.loads(response.read())["title"] == "Course"
        clone = tmp_path / "clone"
        subprocess.run(
            ["git", "-c", f"http.extraHeader=Authorization: Bearer {token}", "clone", "-q", "--bare",
             f"{url}/git/live/source.git", str(clone)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        assert git(clone, "rev-parse", "main") == git(rich.path / "gitstore" / "live.git", "rev-parse", "main")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_incremental_backup_carries_only_what_changed(rich: ContentRepository, tmp_path: Path) -> None:
    data, backups = rich.path.parent, tmp_path / "backups"
    full = backed_up(str(backups), data)
    content.put_draft(rich, "money", {"type": "taxon", "title": "Money, revised", "base_path": "/money"}, author=ADA)
    content.publish(rich, [PublishTarget("money")], author=ADA)
    content.put_draft(rich, "new-page", {"type": "page", "title": "New"}, author=ADA)
    settle(rich.path)  # as the service would within a second, and the backup does first
    after_writes = refs_of(rich.path)
    second = backed_up(str(backups), data)

    assert second["parent"] == full["id"]
    changed = second["repositories"]["source"]
    assert changed["kind"] == "incremental" and 0 < changed["refs_changed"] <= 6
    assert changed["bundle_bytes"] < full["repositories"]["source"]["bundle_bytes"] / 4
    assert second["bytes_written"] < full["bytes_written"] / 3
    assert second["files_reused"] == 2  # credentials and relay state, unchanged: named, not stored again
    third = backed_up(str(backups), data)
    assert third["repositories"]["source"]["kind"] == "unchanged" and third["bytes_written"] < 2000

    # The newest restores the refs of the moment it was taken; an older one, its own.
    newest, older = tmp_path / "newest", tmp_path / "older"
    assert gitstore("restore", str(backups), "--data", str(newest)).returncode == 0
    assert refs_of(newest / "source.git") == after_writes
    fsck_strict(newest / "source.git")
    done = gitstore("restore", str(backups), "source", "--data", str(older), "--backup", full["id"])
    assert done.returncode == 0, done.stderr
    assert "new-page" not in refs_of(older / "source.git")
    assert not (older / "credentials.json").exists(), "one repository's restore leaves the credentials alone"
    assert Store(older).repository("source").index.counts()["entities"] == 13


def test_a_backup_taken_while_writers_write_is_one_moment_of_each_repository(store: Store, tmp_path: Path) -> None:
    import threading

    repo = store.create_repository("busy")
    stop, written = threading.Event(), []

    def write() -> None:
        for n in range(400):  # bounded: a few seconds of writes at most
            if stop.is_set():
                return
            written.append(content.put_draft(repo, f"page-{n % 40}", {"type": "page", "title": f"v{n}"}, author=ADA))
            if n % 25 == 0:
                content.publish(repo, [PublishTarget(f"page-{n % 40}")], author=ADA)

    writer = threading.Thread(target=write)
    writer.start()
    reports = []
    try:
        for _ in range(3):
            reports.append(backed_up(str(tmp_path / "backups"), store.data_dir))
    finally:
        stop.set()
        writer.join(timeout=60)
    assert written, "the writer wrote while the backups ran"
    final = dict(line.split(" ")[::-1] for line in refs_of(repo.path).splitlines())
    for report in reports:
        restored = tmp_path / f"at-{report['id']}"
        done = gitstore("restore", str(tmp_path / "backups"), "--data", str(restored), "--backup", report["id"])
        assert done.returncode == 0, done.stderr
        fsck_strict(restored / "busy.git")
        # every ref restored is where that ref was at one moment: the live ref has only moved on since
        for line in refs_of(restored / "busy.git").splitlines():
            oid, name = line.split(" ")
            assert name in final
            if oid != final[name]:
                git(repo.path, "merge-base", "--is-ancestor", oid, final[name])


def test_after_an_erasure_the_repository_is_backed_up_in_full_without_what_was_erased(
    repo: ContentRepository, tmp_path: Path
) -> None:
    data, backups = repo.path.parent, tmp_path / "backups"
    content.put_draft(
        repo, "page", {"type": "page", "title": "Page", "fields": {"body": "<p>ERASEDBODY</p>\n"}}, author=ADA
    )
    content.put_draft(repo, "page", {"type": "page", "title": "Page", "fields": {"body": "<p>Fine</p>\n"}}, author=ADA)
    backed_up(str(backups), data)
    erase(repo, "page", author=ADA, reason="Court order", version=1)
    after = backed_up(str(backups), data)

    # Building on the old history would bring the erased bytes back with it.
    assert after["repositories"]["demo"]["kind"] == "full"
    restored = tmp_path / "restored"
    assert gitstore("restore", str(backups), "--data", str(restored)).returncode == 0
    assert refs_of(restored / "demo.git") == refs_of(repo.path)
    assert b"ERASEDBODY" not in object_bytes(restored / "demo.git")

"""A damaged object on disk: the entity that needs it answers a corrupt-object problem at once,
everything else keeps serving, and `gitstore fsck` names it.

libgit2 1.9.7 spins forever, holding the GIL, on a truncated loose object, so pytest-timeout
could not interrupt an in-process hang: the reads go to a real server process, and the client's
own timeout is what fails the test if the guard ever stops working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx2 as httpx
import orjson
import pygit2
import pytest

from gitstore import ContentRepository, Store, content
from gitstore.entities import api as entities
from gitstore.publishing.api import PublishTarget
from gitstore.publishing.mirror import sync_live_mirror
from tests.conftest import ADA
from tests.serving import ROOT, start_server

pytestmark = pytest.mark.timeout(120)

PROBLEM = "urn:gitstore:problem:corrupt-object"


def html_blob(repo: ContentRepository, key: str) -> Path:
    """The loose file of the entity's own html field (its text is unique, so no one shares it)."""
    commit = repo.storage.git[pygit2.Oid(hex=entities.get_entity(repo, key).commit)]
    oid = str(commit.tree["fields"]["html.txt"].id)  # type: ignore[attr-defined]
    return repo.path / "objects" / oid[:2] / oid[2:]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data[:10])


def flip_a_bit(path: Path) -> None:
    """Still a complete zlib stream, but the content no longer hashes to the object's name."""
    content = bytearray(zlib.decompress(path.read_bytes()))
    content[-3] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(zlib.compress(bytes(content)))


def gitstore_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitstore.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def damaged(store: Store) -> Store:
    """Three published pages, then the html of two of them truncated and bit-flipped."""
    repo = store.create_repository("demo")
    for key in ("truncated", "flipped", "healthy"):
        doc = {"type": "page", "title": key.title(), "fields": {"html": f"<p>{key} " + "text " * 200 + "</p>\n"}}
        content.put_draft(repo, key, doc, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    sync_live_mirror(repo)  # as the service leaves it after a publish
    truncate(html_blob(repo, "truncated"))
    flip_a_bit(html_blob(repo, "flipped"))
    return store


def test_a_damaged_entity_answers_a_problem_at_once_and_the_rest_keeps_serving(damaged: Store) -> None:
    server, url = start_server(damaged.data_dir)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:  # a hang would time out here
            for key in ("truncated", "flipped"):
                for path in (f"/entities/{key}", f"/entities/{key}?state=draft", f"/entities/{key}/blame?field=html"):
                    started = time.monotonic()
                    answer = http.get(f"/repos/demo{path}")
                    assert time.monotonic() - started < 5
                    assert answer.status_code == 500, answer.text
                    assert answer.headers["content-type"] == "application/problem+json"
                    problem = answer.json()
                    assert problem["type"] == PROBLEM and "gitstore fsck" in problem["detail"]
                    assert "Retry-After" not in answer.headers  # retrying cannot help
            healthy = http.get("/repos/demo/entities/healthy")
            assert healthy.status_code == 200 and healthy.json()["title"] == "Healthy"
            assert http.get("/health").status_code == 200
            written = http.patch(
                "/repos/demo/entities/healthy",
                json={"title": "Still writable"},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert written.status_code == 200, written.text
        assert server.poll() is None
    finally:
        server.kill()
        server.wait()


def test_fsck_names_each_damaged_object_and_its_entity(damaged: Store) -> None:
    done = gitstore_cli("fsck", "demo", "--data", str(damaged.data_dir), "--json")
    assert done.returncode == 1, done.stderr
    report = orjson.loads(done.stdout)["repository"]
    found = {d["problem"]: d["entities"] for d in report["damaged"]}
    assert found == {"truncated": ["truncated"], "hash-mismatch": ["flipped"]}
    assert report["dangling_refs"] == [] and report["other"] == []
    text = gitstore_cli("fsck", "demo", "--data", str(damaged.data_dir))
    assert text.returncode == 1 and "truncated object" in text.stdout and "/truncated/fields/html.txt" in text.stdout


def test_fsck_finds_missing_objects_and_dangling_refs_and_passes_a_clean_repository(repo: ContentRepository) -> None:
    data = str(repo.path.parent)
    content.put_draft(
        repo, "page", {"type": "page", "title": "P", "fields": {"html": "<p>only here</p>\n"}}, author=ADA
    )
    content.put_draft(repo, "other", {"type": "page", "title": "O"}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    sync_live_mirror(repo)
    clean = gitstore_cli("fsck", "demo", "--data", data)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "repository: ok" in clean.stdout and "live: ok" in clean.stdout

    os.unlink(html_blob(repo, "page"))
    ghost = "1234567890abcdef1234567890abcdef12345678"
    (repo.path / "refs" / "published" / "ghost").write_text(ghost + "\n")
    done = gitstore_cli("fsck", "demo", "--data", data, "--json")
    assert done.returncode == 1
    report = orjson.loads(done.stdout)["repository"]
    assert [(d["problem"], d["entities"]) for d in report["damaged"]] == [("missing", ["page"])]
    assert report["dangling_refs"] == [{"ref": "refs/published/ghost", "target": ghost}]


def test_startup_repair_leaves_a_repository_it_cannot_read_and_repairs_the_rest(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("demo", "other"):
        repo = store.create_repository(name)
        content.put_draft(
            repo, "page", {"type": "page", "title": "P", "fields": {"html": f"<p>{name}</p>\n"}}, author=ADA
        )
        content.publish_all_drafts(repo, author=ADA)  # the live-only copy is left behind, as by a crash
    truncate(html_blob(store.repository("demo"), "page"))  # which catching the copy up must read
    reports = Store(store.data_dir).repair_all()
    assert list(reports) == ["other"] and reports["other"].live_objects_copied > 0
    assert "repository demo was not repaired" in caplog.text and "gitstore fsck demo" in caplog.text


def remove(path: Path) -> None:
    """A missing object: its file deleted, as by hand (the loose-object guard never sees it)."""
    path.unlink()


@pytest.fixture
def with_missing(damaged: Store) -> Store:
    """`damaged`, plus a published page whose html file is gone and a page whose first
    version's commit is gone."""
    repo = damaged.repository("demo")
    doc = {"type": "page", "title": "Missing", "fields": {"html": "<p>missing " + "text " * 200 + "</p>\n"}}
    content.put_draft(repo, "missing", doc, author=ADA)
    content.put_draft(repo, "gap", {"type": "page", "title": "Gap"}, author=ADA)
    first = entities.get_entity(repo, "gap", state="draft").commit
    content.put_draft(repo, "gap", {"type": "page", "title": "Gap 2"}, author=ADA)
    content.publish(repo, [PublishTarget("missing")], author=ADA)
    sync_live_mirror(repo)
    remove(html_blob(repo, "missing"))
    remove(repo.path / "objects" / first[:2] / first[2:])
    return damaged


def test_a_missing_object_is_a_corrupt_object_problem_on_every_read(with_missing: Store) -> None:
    server, url = start_server(with_missing.data_dir)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            for path in (
                "/entities/missing",
                "/entities/missing?state=draft",
                "/entities/missing/diff?from=draft&to=published",
                "/entities/missing/blame?field=html",
                "/entities/gap/versions",
                "/entities/gap?version=1",
            ):
                answer = http.get(f"/repos/demo{path}", headers={"Accept": "application/json"})
                assert answer.status_code == 500, f"{path}: {answer.text}"
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["type"] == PROBLEM and "missing" in answer.json()["detail"], path
            patch = http.get("/repos/demo/entities/missing/diff?from=draft", headers={"Accept": "text/x-diff"})
            assert patch.status_code == 500 and patch.json()["type"] == PROBLEM
            assert http.get("/repos/demo/entities/gap?state=draft").json()["title"] == "Gap 2"
        assert server.poll() is None
    finally:
        server.kill()
        server.wait()


def test_a_listing_serves_the_readable_entities_and_names_the_damaged_ones(with_missing: Store) -> None:
    server, url = start_server(with_missing.data_dir)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            for query in ("", "?state=draft", "?as_of=2999-01-01T00:00:00Z", "?limit=2", "?limit=2&cursor=healthy"):
                answer = http.get(f"/repos/demo/entities{query}")
                assert answer.status_code == 200, f"{query}: {answer.text}"
                page = answer.json()
                listed = {e["key"] for e in page["items"]} | set(page["damaged"])
                assert set(page["damaged"]) == listed & {"flipped", "missing", "truncated"}, query
                assert all(e["title"] for e in page["items"])
            everything = http.get("/repos/demo/entities?state=draft").json()
            assert sorted(e["key"] for e in everything["items"]) == ["gap", "healthy"]
            assert everything["damaged"] == ["flipped", "missing", "truncated"]
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("state", ["draft", "published"])
def test_an_export_of_damaged_content_is_refused_before_its_first_byte(with_missing: Store, state: str) -> None:
    """Once a streamed response has started, an error can only cut it short: a 200 with an empty
    or half bundle. The damage is found first, and named by entity."""
    server, url = start_server(with_missing.data_dir)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            for fmt in ("tar.gz", "zip", "ndjson"):
                answer = http.get("/repos/demo/export", params={"state": state, "format": fmt})
                assert answer.status_code == 500, f"{fmt}: {answer.status_code}"
                assert answer.headers["content-type"] == "application/problem+json"
                problem = answer.json()
                assert problem["type"] == PROBLEM and problem["entities"] == ["flipped", "missing", "truncated"]
                assert "oid" not in problem and "path" not in problem  # no object ids for callers
        assert server.poll() is None
    finally:
        server.kill()
        server.wait()
    done = gitstore_cli("export", "--repo", "demo", "--data", str(with_missing.data_dir), "--state", state)
    assert done.returncode == 2 and done.stdout == "" and "flipped, missing, truncated" in done.stderr


def test_startup_repair_leaves_a_repository_with_a_missing_object_and_repairs_the_rest(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("demo", "other"):
        repo = store.create_repository(name)
        content.put_draft(
            repo, "page", {"type": "page", "title": "P", "fields": {"html": f"<p>{name}</p>\n"}}, author=ADA
        )
        content.publish_all_drafts(repo, author=ADA)  # the live-only copy is left behind, as by a crash
    remove(html_blob(store.repository("demo"), "page"))
    reports = Store(store.data_dir).repair_all()
    assert list(reports) == ["other"] and reports["other"].live_objects_copied > 0
    assert "repository demo was not repaired" in caplog.text and "is missing" in caplog.text

"""`refs/heads/draft` catches up with single changes in folds: each change listed once, in
order, under its own author; whatever derives content from `draft` folds first and sees no lag,
and a plain read of its head writes nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import Author, ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities import rounds
from gitstore.entities.api import DraftChange
from gitstore.entities.document import parse_document
from gitstore.entities.draft_branch import fold_drafts, folded_draft_head
from gitstore.events import read_events
from gitstore.storage.api import entity_path
from tests.conftest import ADA, GRACE, fsck_strict, git, object_ids

PAGE = {"type": "page", "title": "Intro"}


def folded(repo: ContentRepository) -> list[tuple[str, str]]:
    """Every (key, commit) the `draft` branch lists as folded, oldest first."""
    log = git(repo.path, "log", "--reverse", "--format=%B", "draft").splitlines()
    return [tuple(line.split()[1:3]) for line in log if line.startswith("Gitstore-Folded: ")]  # type: ignore[misc]


def draft_tree_of(repo: ContentRepository, key: str) -> str:
    return git(repo.path, "rev-parse", f"draft:{entity_path(key)}").strip()


def tip_tree_of(repo: ContentRepository, key: str) -> str:
    return git(repo.path, "rev-parse", f"refs/drafts/{key}^{{tree}}").strip()


def test_a_fold_commits_each_authors_run_of_changes_and_lists_every_change_in_order(repo: ContentRepository) -> None:
    a1 = content.put_draft(repo, "a", PAGE, author=ADA).entity.commit
    b1 = content.put_draft(repo, "b", PAGE, author=ADA).entity.commit
    a2 = content.patch_draft(repo, "a", {"title": "Grace's"}, author=GRACE).entity.commit
    a3 = content.patch_draft(repo, "a", {"title": "Ada's again"}, author=ADA).entity.commit
    assert folded_draft_head(repo) is not None
    assert folded(repo) == [("a", a1), ("b", b1), ("a", a2), ("a", a3)]
    log = git(repo.path, "log", "--format=%an|%s", "draft").splitlines()
    assert log == ["Ada Lovelace|Update a: title", "Grace Hopper|Update a: title", "Ada Lovelace|2 changes to a, b"]
    body = git(repo.path, "log", "-1", "--skip=2", "--format=%b", "draft")
    assert "  Create a\n  Create b\n" in body  # each change's own summary
    assert draft_tree_of(repo, "a") == tip_tree_of(repo, "a")
    assert (
        git(repo.path, "blame", "--line-porcelain", "draft", "--", f"{entity_path('a')}/entity.json").count(
            "author Grace Hopper"
        )
        == 0
    )  # Ada's last change replaced Grace's title line
    fsck_strict(repo.path)


def test_nothing_waiting_folds_nothing(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", PAGE, author=ADA)
    assert fold_drafts(repo) is True
    head = folded_draft_head(repo)
    assert fold_drafts(repo) is False and folded_draft_head(repo) == head


def test_a_batch_folds_first_so_its_commit_sits_on_every_change_before_it(repo: ContentRepository) -> None:
    single = content.put_draft(repo, "a", PAGE, author=ADA).entity.commit
    content.write_drafts(
        repo, [DraftChange("b", lambda _c: (parse_document(PAGE), False))], author=ADA, summary="Batch"
    )
    assert git(repo.path, "log", "--format=%s", "draft").splitlines() == ["Batch", "Create a"]
    assert folded(repo) == [("a", single)]
    # A single change made right after a batch leaves `draft` (the batch's commit) alone, and
    # reads still see the single change, not the batch's older commit of the same entity.
    later = content.patch_draft(repo, "b", {"title": "After the batch"}, author=ADA).entity
    assert entities.get_entity(repo, "b", state="draft").commit == later.commit
    assert entities.get_entity(repo, "b", state="draft").title == "After the batch"


def test_a_writer_folds_once_enough_changes_wait(repo: ContentRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rounds, "FOLD_AT", 3)
    content.put_draft(repo, "a", PAGE, author=ADA)
    content.put_draft(repo, "b", PAGE, author=ADA)
    assert repo.index.unfolded_mark() is not None and git(repo.path, "for-each-ref", "refs/heads/draft") == ""
    content.put_draft(repo, "c", PAGE, author=ADA)
    assert repo.index.unfolded_mark() is None
    assert [key for key, _ in folded(repo)] == ["a", "b", "c"]


def test_a_crash_after_a_fold_moved_draft_but_before_the_index_heard_does_not_fold_twice(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = content.put_draft(repo, "a", PAGE, author=ADA).entity.commit

    def crash(*_args: object) -> None:
        raise KeyboardInterrupt  # the process dies between the two steps

    monkeypatch.setattr(repo.index, "record_fold", crash)
    with pytest.raises(KeyboardInterrupt):
        fold_drafts(repo)
    monkeypatch.undo()
    assert repo.index.unfolded_mark() is not None  # the index did not hear of the fold...
    assert entities.roll_forward_drafts(repo) is True  # ...until the next writer rolls it forward
    assert repo.index.unfolded_mark() is None
    content.put_draft(repo, "b", PAGE, author=GRACE)
    folded_draft_head(repo)
    assert folded(repo)[0] == ("a", commit) and len(folded(repo)) == 2


def test_events_name_each_folded_change_with_its_own_author(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", PAGE, author=ADA)
    content.put_draft(repo, "b", PAGE, author=ADA)
    content.patch_draft(repo, "a", {"title": "Edited"}, author=GRACE)
    events = read_events(repo).items  # reading the feed folds first
    assert [(e.key, e.action, e.author_name) for e in events] == [
        ("a", "create", "Ada Lovelace"),
        ("b", "create", "Ada Lovelace"),
        ("a", "update", "Grace Hopper"),
    ]
    folded_draft_head(repo)
    assert read_events(repo, after=read_events(repo).cursor).items == []  # no event twice


def test_folds_racing_writers_in_threads_show_every_change_once(repo: ContentRepository) -> None:
    keys = [f"k{n}" for n in range(4)]
    for key in keys:
        content.put_draft(repo, key, PAGE, author=ADA)
    made: list[tuple[str, str]] = []
    guard = threading.Lock()
    stop = threading.Event()

    def writer(key: str, who: Author) -> None:
        for n in range(25):
            commit = content.patch_draft(repo, key, {"title": f"{key} {n}"}, author=who).entity.commit
            with guard:
                made.append((key, commit))

    def folder() -> None:
        while not stop.is_set():
            fold_drafts(repo)

    folders = [threading.Thread(target=folder) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(k, ADA if n % 2 else GRACE)) for n, k in enumerate(keys)]
    for t in folders + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in folders:
        t.join()
    folded_draft_head(repo)
    listed = folded(repo)
    assert len(listed) == len(set(listed)) == len(keys) + len(made)
    for key in keys:  # each entity's changes in the order they were made, and its tree at the tip
        assert [c for k, c in listed if k == key][1:] == [c for k, c in made if k == key]
        assert draft_tree_of(repo, key) == tip_tree_of(repo, key)
    fsck_strict(repo.path)


def test_reading_a_repository_over_http_folds_nothing(tmp_path: Path) -> None:
    """`GET /repos/{repo}` shows `draft` as it is: it moves no ref, commits nothing and leaves
    the change waiting in the index, where only a fold (here, the export's) takes it."""
    settings = Settings(data_dir=tmp_path / "data", load_samples=False, fold_seconds=0, housekeeping_seconds=0)
    with TestClient(create_app(settings)) as client:
        client.post("/repos", json={"name": "demo"}).raise_for_status()
        client.put("/repos/demo/entities/intro", json=PAGE).raise_for_status()
        repo = client.app.state.store.repository("demo")  # type: ignore[attr-defined]

        def written() -> tuple[str, set[str], list[tuple[str, str]], str | None]:
            return (
                git(repo.path, "for-each-ref"),
                object_ids(repo.path),
                repo.index.unfolded(),
                repo.index.meta("draft_head"),
            )

        before = written()
        assert [key for key, _ in before[2]] == ["intro"]  # the write waits to be folded
        for path in ("/repos/demo", "/repos"):
            assert client.get(path).status_code == 200
        assert written() == before
        shown = client.get("/repos/demo").json()["draft"]
        assert shown == (git(repo.path, "for-each-ref", "--format=%(objectname)", "refs/heads/draft").strip() or None)

        assert client.get("/repos/demo/export", params={"state": "draft"}).status_code == 200
        assert written()[2] == [] and client.get("/repos/demo").json()["draft"] != shown

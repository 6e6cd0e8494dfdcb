"""The journal (`GITSTORE_FSYNC=journal`, ADR 0014): one append and one fdatasync per round,
and a replay that brings back what a power cut took from the page cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from gitstore import ContentRepository, Store, content
from gitstore.storage import durability, journal
from gitstore.storage.refs import delete_ref, read_ref, set_ref, update_refs
from tests.conftest import ADA, fsck_strict, git
from tests.reliability.power_cut import lose_what_was_not_flushed

SIG = pygit2.Signature("Ada Lovelace", "ada@example.org")


@pytest.fixture(autouse=True)
def journal_method() -> Iterator[None]:
    durability.use_method("journal")
    yield
    durability.use_method(None)
    journal.forget_journals()


def commit(handle: pygit2.Repository, text: str, parent: pygit2.Oid | None = None) -> pygit2.Oid:
    tree = handle.TreeBuilder()
    tree.insert("note.txt", handle.create_blob(text.encode()), pygit2.enums.FileMode.BLOB)
    return handle.create_commit(None, SIG, SIG, text, tree.write(), [parent] if parent else [])


def two_moves(handle: pygit2.Repository, ref: str) -> tuple[pygit2.Oid, pygit2.Oid]:
    """Create `ref` at a first commit, then move it to a second; both commits."""
    one = commit(handle, "one")
    two = commit(handle, "two", one)
    set_ref(handle, ref, expected=None, new=one)
    set_ref(handle, ref, expected=one, new=two)
    return one, two


def restart(store: Store, name: str) -> ContentRepository:
    """A new process's view: this one's journals closed, the repository opened afresh."""
    journal.forget_journals()
    return Store(store.data_dir).repository(name)


def log_of(repo: ContentRepository) -> Path:
    return repo.path / "journal" / "log"


def test_a_round_is_one_record_holding_its_objects_and_its_ref_moves(repo: ContentRepository) -> None:
    handle = repo.storage.git
    first = commit(handle, "one")
    set_ref(handle, "refs/drafts/intro", expected=None, new=first)
    records = list(journal.read_records(str(log_of(repo))))
    assert len(records) == 1
    objects, moves = records[0]
    assert {o.name for o in objects} >= {str(first), str(handle[first].tree_id)}  # type: ignore[attr-defined]
    assert moves == [journal.Move("refs/drafts/intro", None, first)]
    assert git(repo.path, "rev-parse", "refs/drafts/intro").strip() == str(first)
    fsck_strict(repo.path)


def test_a_torn_record_is_skipped_and_the_records_after_it_are_read(repo: ContentRepository) -> None:
    handle = repo.storage.git
    first = commit(handle, "one")
    set_ref(handle, "refs/drafts/a", expected=None, new=first)
    with open(log_of(repo), "ab") as f:  # a writer killed halfway through its append
        f.write(journal.encode([], [journal.Move("refs/drafts/x", None, first)])[:-7])
    set_ref(handle, "refs/drafts/b", expected=None, new=first)
    refs = [m.ref for _, moves in journal.read_records(str(log_of(repo))) for m in moves]
    assert refs == ["refs/drafts/a", "refs/drafts/b"]


def test_after_a_power_cut_replay_brings_back_every_object_and_ref_move(store: Store, repo: ContentRepository) -> None:
    written = []
    for n in range(6):
        written.append(content.put_draft(repo, f"page-{n % 3}", {"type": "page", "title": f"t{n}"}, author=ADA))
    final = {f"refs/drafts/page-{n}": read_ref(repo.storage.git, f"refs/drafts/page-{n}") for n in range(3)}
    lost = lose_what_was_not_flushed(repo.path)
    assert lost.objects and lost.refs  # the cut took files the page cache held
    repo = restart(store, repo.name)
    for ref, value in final.items():
        assert read_ref(repo.storage.git, ref) == value
    assert not log_of(repo).exists() or log_of(repo).stat().st_size == 0  # replayed, flushed, emptied
    fsck_strict(repo.path)


def test_replay_ends_on_the_last_move_of_a_ref_that_went_back_and_forth(store: Store, repo: ContentRepository) -> None:
    handle = repo.storage.git
    one, two = two_moves(handle, "refs/drafts/a")
    set_ref(handle, "refs/drafts/a", expected=two, new=one)  # back: a discarded draft
    repo = restart(store, repo.name)  # nothing lost: the replay walks the chain and ends where it was
    assert read_ref(repo.storage.git, "refs/drafts/a") == one


def test_a_deleted_ref_stays_deleted_after_a_replay(store: Store, repo: ContentRepository) -> None:
    handle = repo.storage.git
    one = commit(handle, "one")
    set_ref(handle, "refs/drafts/gone", expected=None, new=one)
    delete_ref(handle, "refs/drafts/gone")
    lose_what_was_not_flushed(repo.path)
    repo = restart(store, repo.name)
    assert read_ref(repo.storage.git, "refs/drafts/gone") is None


def test_a_move_no_longer_where_it_started_is_not_replayed(store: Store, repo: ContentRepository) -> None:
    handle = repo.storage.git
    one, other = commit(handle, "one"), commit(handle, "other")
    set_ref(handle, "refs/drafts/a", expected=None, new=one)
    durability.use_method("fsync")  # moved by someone outside the journal since
    set_ref(handle, "refs/drafts/a", expected=one, new=other)
    durability.use_method("journal")
    (repo.path / "refs/drafts/a").write_text(f"{other}\n")
    repo = restart(store, repo.name)
    assert read_ref(repo.storage.git, "refs/drafts/a") == other


def test_many_refs_moved_through_packed_refs_are_replayed_too(store: Store, repo: ContentRepository) -> None:
    handle = repo.storage.git
    one = commit(handle, "one")
    update_refs(handle, {f"refs/published/k{n}": one for n in range(40)})  # one packed-refs rewrite
    (repo.path / "packed-refs").unlink()  # the cut took the rewrite
    repo = restart(store, repo.name)
    assert all(read_ref(repo.storage.git, f"refs/published/k{n}") == one for n in range(40))
    fsck_strict(repo.path)


def test_a_checkpoint_empties_the_journal_and_writers_go_on(store: Store, repo: ContentRepository) -> None:
    for n in range(3):
        content.put_draft(repo, f"page-{n}", {"type": "page", "title": "t"}, author=ADA)
    assert journal.checkpoint(str(repo.path))
    assert not (repo.path / "journal" / "log.old").exists() and log_of(repo).stat().st_size == 0
    content.put_draft(repo, "page-9", {"type": "page", "title": "t"}, author=ADA)
    assert len(list(journal.read_records(str(log_of(repo))))) == 1
    assert not journal.checkpoint(str(repo.path / "nowhere"))


def test_a_checkpoint_that_died_after_its_rename_is_replayed_and_finished(
    store: Store, repo: ContentRepository
) -> None:
    content.put_draft(repo, "page-1", {"type": "page", "title": "t"}, author=ADA)
    os.rename(log_of(repo), repo.path / "journal" / "log.old")  # died before its flush
    content.put_draft(repo, "page-2", {"type": "page", "title": "t"}, author=ADA)
    tips = {k: read_ref(repo.storage.git, f"refs/drafts/{k}") for k in ("page-1", "page-2")}
    lose_what_was_not_flushed(repo.path)
    repo = restart(store, repo.name)
    assert {k: read_ref(repo.storage.git, f"refs/drafts/{k}") for k in tips} == tips
    assert not (repo.path / "journal" / "log.old").exists()
    fsck_strict(repo.path)


def test_a_second_process_does_not_replay_a_journal_another_uses(store: Store, repo: ContentRepository) -> None:
    content.put_draft(repo, "page-1", {"type": "page", "title": "t"}, author=ADA)
    held = os.open(repo.path / "journal" / "users", os.O_RDONLY)  # another live process
    try:
        import fcntl

        fcntl.flock(held, fcntl.LOCK_SH)
        repo = restart(store, repo.name)
        assert len(list(journal.read_records(str(log_of(repo))))) == 1  # left for its writer
    finally:
        os.close(held)


def test_a_ref_left_empty_by_a_power_cut_is_set_again_from_the_journal(store: Store, repo: ContentRepository) -> None:
    handle = repo.storage.git
    one, two = two_moves(handle, "refs/drafts/a")
    (repo.path / "refs/drafts/a").write_bytes(b"")  # the rename reached the disk, its content did not
    repo = restart(store, repo.name)
    assert read_ref(repo.storage.git, "refs/drafts/a") == two
    fsck_strict(repo.path)

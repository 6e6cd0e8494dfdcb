"""Fencing by epoch, in-process against the real PostgreSQL: a guarded repository moves a ref only
while the control plane says this node owns it at the epoch it took it at."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from gitstore import ContentRepository, Store, content
from gitstore.cluster.api import ClusterNode, ControlPlane
from gitstore.entities import rounds
from gitstore.errors import NotOwner
from gitstore.publishing.api import PublishTarget
from gitstore.storage.api import check_fence, guarded_repositories, read_ref
from tests.conftest import ADA

PAGE = {"type": "page", "title": "Page"}


@pytest.fixture
def node(cluster_dsn: str, tmp_path: Path) -> Iterator[ClusterNode]:
    plane = ControlPlane(cluster_dsn)
    running = ClusterNode(plane, "node-1", "http://127.0.0.1:9001")
    running.start(Store(tmp_path / "data"))
    yield running
    running.stop()
    plane.close()


@pytest.fixture
def other(cluster_dsn: str) -> Iterator[ControlPlane]:
    plane = ControlPlane(cluster_dsn)
    plane.join("node-2", "http://127.0.0.1:9002")
    yield plane
    plane.close()


def _refs(repo: ContentRepository) -> dict[str, str]:
    git = repo.storage.git
    return {name: str(git.references[name].target) for name in git.references if name.startswith("refs/")}


def test_an_owned_repository_is_guarded_and_writes(node: ClusterNode) -> None:
    repo = node.create_repository("books")
    assert str(repo.path.resolve()) in guarded_repositories()
    assert node.owns("books")
    written = content.put_draft(repo, "intro", PAGE, author=ADA)
    assert written.changed and read_ref(repo.storage.git, "refs/drafts/intro") is not None


def test_a_write_is_refused_once_another_node_owns_the_repository(node: ClusterNode, other: ControlPlane) -> None:
    repo = node.create_repository("books")
    content.put_draft(repo, "intro", PAGE, author=ADA)
    before = _refs(repo)
    # A move the node never heard of (it was paused): PostgreSQL says another node owns it now.
    other.begin_move("books", "node-2")
    epoch = other.fence("books")
    other.finish_move("books", "node-2", epoch)
    with pytest.raises(NotOwner, match="books"):
        content.put_draft(repo, "intro", PAGE | {"title": "Changed"}, author=ADA)
    with pytest.raises(NotOwner):
        content.put_draft(repo, "other", PAGE, author=ADA)
    assert _refs(repo) == before
    assert not [p for p in (repo.path / "refs").rglob("*.lock")]  # the refused moves let their lock files go


def test_a_write_is_refused_once_the_epoch_moved(node: ClusterNode, other: ControlPlane) -> None:
    repo = node.create_repository("books")
    content.put_draft(repo, "intro", PAGE, author=ADA)
    before = _refs(repo)
    other.begin_move("books", "node-2")
    other.fence("books")  # the owner stays node-1, at epoch 2 the node did not take it at
    with pytest.raises(NotOwner):
        content.put_draft(repo, "intro", PAGE | {"title": "Changed"}, author=ADA)
    with pytest.raises(NotOwner):
        content.publish(repo, [PublishTarget("intro")], author=ADA)
    assert _refs(repo) == before


def test_a_repository_given_up_is_set_aside_and_its_path_refuses_writes_for_good(node: ClusterNode) -> None:
    repo = node.create_repository("books")
    path = repo.path
    node.gave_up("books")
    assert not path.exists()
    assert node.fences.epoch("books") is None  # no longer guarded at an epoch: not written here
    assert [p.name.split(".")[0] for p in (node.store.data_dir / ".moved-away").iterdir()] == ["books"]
    with pytest.raises(NotOwner, match="moved away"):
        check_fence(str(path))
    # A request that opened the repository before the move answers the fence's refusal (503,
    # retry where it lives now), not the missing folder's symptoms (a 500 or a 412).
    with pytest.raises(NotOwner, match="moved away"):
        content.put_draft(repo, "intro", PAGE, author=ADA)
    with pytest.raises(NotOwner, match="moved away"):
        content.publish(repo, [PublishTarget("intro")], author=ADA)
    with pytest.raises(NotOwner, match="moved away"):  # a request routed here just before
        node.store.repository("books")
    assert not path.exists()  # nothing made the folder again
    node.fences.unguard_all()  # a stopping node drops the refusals with its guards
    check_fence(str(path))


@pytest.mark.parametrize("moment", ["commit_change", "set_refs"])
def test_a_write_whose_repository_is_set_aside_during_its_round_is_refused_not_failed(
    node: ClusterNode, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """The move ends while the round writes its objects (commit_change) or between them and
    its ref moves (set_refs): the writer is told NotOwner, and nothing makes the repository's
    folder again where it was (a move back here would find it in the way)."""
    repo = node.create_repository("books")
    content.put_draft(repo, "intro", PAGE, author=ADA)
    before = _refs(repo)
    real = getattr(rounds, moment)

    def moved_away_now(*args: object, **kwargs: object) -> object:
        node.gave_up("books")
        return real(*args, **kwargs)

    monkeypatch.setattr(rounds, moment, moved_away_now)
    with pytest.raises(NotOwner, match="moved away"):
        content.put_draft(repo, "intro", PAGE | {"title": "Changed"}, author=ADA)
    assert not repo.path.exists()
    (aside,) = (node.store.data_dir / ".moved-away").iterdir()
    moved = pygit2.Repository(str(aside))
    assert {name: str(moved.references[name].target) for name in moved.references if name.startswith("refs/")} == before


def test_a_failure_after_the_commit_point_is_raised_as_it_is_never_as_a_refusal(
    node: ClusterNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NotOwner says nothing was written: a change already committed when its repository moved
    away and its index write failed must not be answered so (its writer would retry it)."""
    repo = node.create_repository("books")
    content.put_draft(repo, "intro", PAGE, author=ADA)
    before = _refs(repo)

    def moved_away_then_failed(*args: object, **kwargs: object) -> int:
        node.gave_up("books")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(repo.index, "record_drafts", moved_away_then_failed)
    with pytest.raises(sqlite3.OperationalError):
        content.put_draft(repo, "intro", PAGE | {"title": "Changed"}, author=ADA)
    (aside,) = (node.store.data_dir / ".moved-away").iterdir()
    moved = pygit2.Repository(str(aside))
    assert str(moved.references["refs/drafts/intro"].target) != before["refs/drafts/intro"]  # it was made

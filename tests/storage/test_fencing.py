"""The fencing hook (gitstore.storage.fencing): a guarded repository's check runs at every commit
point (a loose ref move, several at once, a packed-refs rewrite, a deletion), with the ref lock
files taken, and a check that raises leaves every ref where it was and no lock file behind.
The cluster installs the checks (tests/cluster/test_fencing.py); here a check is a plain function,
so storage is tested on its own, in every durability method."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from gitstore import ContentRepository
from gitstore.errors import NotOwner
from gitstore.storage import durability, replication
from gitstore.storage.api import check_fence, guard_repository, unguard_repository
from gitstore.storage.refs import delete_ref, read_ref, set_ref, set_refs, update_refs_packed
from tests.storage.test_ref_writes import new_commit


@pytest.fixture(params=durability.METHODS)
def method(request: pytest.FixtureRequest) -> Iterator[str]:
    durability.use_method(request.param)
    yield request.param
    durability.use_method(None)


class Fence:
    """A check that counts its calls, sees which lock files are taken, and refuses when told."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self.calls = 0
        self.locks_seen: list[list[str]] = []
        self.refusing = False

    def __call__(self) -> None:
        self.calls += 1
        self.locks_seen.append(sorted(p.name for p in self.git_dir.rglob("*.lock") if "gitstore" not in p.parts))
        if self.refusing:
            raise NotOwner("another node owns it now", name="demo")


@pytest.fixture
def fence(repo: ContentRepository) -> Iterator[Fence]:
    made = Fence(repo.path)
    guard_repository(repo.path, made)
    yield made
    unguard_repository(repo.path)


def _ref_files(repo: ContentRepository) -> dict[str, str]:
    root = repo.path
    found = {str(p.relative_to(root)): p.read_text() for p in (root / "refs").rglob("*") if p.is_file()}
    packed = root / "packed-refs"
    return found | ({"packed-refs": packed.read_text()} if packed.exists() else {})


def test_each_commit_point_checks_with_its_lock_files_taken(repo: ContentRepository, fence: Fence, method: str) -> None:
    git = repo.storage.git
    one = new_commit(git, "one")
    replication.register(repo.path, lambda record: None)  # an owner's: its rounds are not checked again
    try:
        set_ref(git, "refs/drafts/a", expected=None, new=one)
        set_refs(git, [("refs/drafts/b", None, one), ("refs/drafts/c", None, one)])
        update_refs_packed(git, {"refs/drafts/d": one})
        delete_ref(git, "refs/drafts/a")
    finally:
        replication.unregister(repo.path)
    assert fence.calls == 4
    assert fence.locks_seen[:3] == [["a.lock"], ["b.lock", "c.lock"], ["packed-refs.lock"]]
    assert read_ref(git, "refs/drafts/a") is None and read_ref(git, "refs/drafts/d") == one


def test_a_refusing_check_moves_nothing_and_leaves_no_lock(repo: ContentRepository, fence: Fence, method: str) -> None:
    git = repo.storage.git
    one = new_commit(git, "one")
    two = new_commit(git, "two", one)
    set_ref(git, "refs/drafts/a", expected=None, new=one)
    update_refs_packed(git, {"refs/drafts/p": one})
    before = _ref_files(repo)
    fence.refusing = True
    attempts = [
        lambda: set_ref(git, "refs/drafts/a", expected=one, new=two),
        lambda: set_ref(git, "refs/drafts/new", expected=None, new=two),
        lambda: set_refs(git, [("refs/drafts/a", one, two), ("refs/drafts/b", None, two)]),
        lambda: update_refs_packed(git, {"refs/drafts/p": two}),
        lambda: delete_ref(git, "refs/drafts/a"),
    ]
    for attempt in attempts:
        with pytest.raises(NotOwner):
            attempt()
    assert _ref_files(repo) == before
    assert not [p for p in repo.path.rglob("*.lock") if "gitstore" not in p.parts]
    assert read_ref(git, "refs/drafts/a") == one


def test_an_unguarded_repository_is_not_checked_and_a_guard_is_found_however_the_path_is_spelt(
    repo: ContentRepository, tmp_path: Path
) -> None:
    calls: list[int] = []
    check_fence(str(repo.path))  # no guard: nothing
    link = tmp_path / "elsewhere"
    link.symlink_to(repo.path)
    guard_repository(link, lambda: calls.append(1))
    try:
        check_fence(f"{repo.path}/")  # as pygit2 spells it, through the real path
        git = pygit2.Repository(str(link))
        set_ref(git, "refs/drafts/x", expected=None, new=new_commit(git, "x"))
    finally:
        unguard_repository(repo.path)
    assert len(calls) == 2


def test_a_round_whose_shipper_was_dropped_asks_its_fence_again_before_its_refs_move(
    repo: ContentRepository, fence: Fence
) -> None:
    """A node that lost the repository to a promotion drops its shipper (and keeps its guard).
    A round that passed its fence just before the promotion then reaches the journal with no
    shipper: it must not move its refs (be acknowledged) without the replica that now owns the
    repository having it. Seen in the cluster's promotion test: one run in eight lost a write."""
    durability.use_method("journal")
    try:
        git = repo.storage.git
        one = new_commit(git, "one")
        two = new_commit(git, "two", one)
        set_ref(git, "refs/drafts/a", expected=None, new=one)
        first_call = fence.calls

        def promoted_right_after_the_check() -> None:
            fence.refusing = fence.calls > first_call  # the check at the commit point passed

        shipped: list[bytes] = []
        replication.register(repo.path, shipped.append)
        set_ref(git, "refs/drafts/a", expected=one, new=two)  # with a shipper: shipped, not re-checked
        assert len(shipped) == 1 and fence.calls == first_call + 1
        replication.unregister(repo.path)  # the demotion
        three = new_commit(git, "three", two)
        guard_repository(repo.path, lambda: (fence(), promoted_right_after_the_check()))
        with pytest.raises(NotOwner):
            set_ref(git, "refs/drafts/a", expected=two, new=three)
        assert read_ref(git, "refs/drafts/a") == two  # nothing acknowledged
        assert not [p for p in repo.path.rglob("*.lock") if "gitstore" not in p.parts]
    finally:
        replication.unregister(repo.path)
        durability.use_method(None)

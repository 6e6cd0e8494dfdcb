"""The live-only repository holds main, refs/published/* and nothing a draft reaches."""

from __future__ import annotations

import pygit2
import pytest

from gitstore import ContentRepository
from gitstore.entities import api as entities
from gitstore.publishing import api as publishing
from gitstore.publishing import mirror
from gitstore.publishing.mirror import ensure_live_mirror, sync_live_mirror
from tests.conftest import ADA, fsck_strict, git


def test_mirror_catches_up_over_several_publishes_and_holds_no_draft(repo: ContentRepository) -> None:
    for n in range(3):
        entities.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
        publishing.publish(repo, [publishing.PublishTarget(f"page-{n}")], author=ADA)
    draft = entities.patch_draft(repo, "page-0", {"title": "unpublished"}, author=ADA).entity.commit
    path = ensure_live_mirror(repo)
    mirror = pygit2.Repository(str(path))
    assert git(path, "for-each-ref", "--format=%(refname) %(objectname)") == git(
        repo.path, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main", "refs/published"
    )
    assert pygit2.Oid(hex=draft) not in mirror
    assert "refs/heads/draft" not in git(path, "for-each-ref")
    fsck_strict(path)


def test_mirror_sync_copies_only_what_a_publish_added(repo: ContentRepository) -> None:
    for n in range(40):
        entities.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    publishing.publish_all_drafts(repo, author=ADA)
    assert sync_live_mirror(repo) > 40 * 3
    entities.patch_draft(repo, "page-7", {"title": "changed"}, author=ADA)
    publishing.publish(repo, [publishing.PublishTarget("page-7")], author=ADA)
    # commit + entity tree + blob of page-7, and main's commit, root tree and one shard tree
    assert sync_live_mirror(repo) == 6
    assert sync_live_mirror(repo) == 0


def test_small_syncs_copy_loose_objects_so_the_mirror_does_not_gather_packs(repo: ContentRepository) -> None:
    """Every lookup searches each pack: a pack per publish made each later sync dearer."""
    for n in range(80):
        entities.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    publishing.publish_all_drafts(repo, author=ADA)
    path = ensure_live_mirror(repo)  # a big first copy: one pack
    packs = sorted((path / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 1
    for n in range(5):
        entities.patch_draft(repo, f"page-{n}", {"title": f"changed {n}"}, author=ADA)
        publishing.publish(repo, [publishing.PublishTarget(f"page-{n}")], author=ADA)
        assert sync_live_mirror(repo) == 6
    assert sorted((path / "objects" / "pack").glob("*.pack")) == packs
    assert git(path, "rev-parse", "main") == git(repo.path, "rev-parse", "main")
    assert git(path, "ls-tree", "-r", "main") == git(repo.path, "ls-tree", "-r", "main")
    fsck_strict(path)


@pytest.mark.parametrize("walk_back", [64, 2])
def test_a_mirror_several_publishes_behind_catches_up_with_the_newest_of_each(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch, walk_back: int
) -> None:
    """Publishes that land together leave the mirror a few behind: it reads what each one
    moved, newest first, or compares every published ref when further behind than it looks."""
    monkeypatch.setattr(mirror, "_WALK_BACK", walk_back)
    for key in ("a", "b", "c"):
        entities.put_draft(repo, key, {"type": "page", "title": key}, author=ADA)
    publishing.publish(repo, [publishing.PublishTarget("a")], author=ADA)
    path = ensure_live_mirror(repo)
    for key, title in [("b", "b1"), ("c", "c1"), ("b", "b2")]:
        entities.patch_draft(repo, key, {"title": title}, author=ADA)
        publishing.publish(repo, [publishing.PublishTarget(key)], author=ADA)
    sync_live_mirror(repo)
    refs = ["refs/heads/main", "refs/published"]
    assert git(path, "for-each-ref", "--format=%(refname) %(objectname)") == git(
        repo.path, "for-each-ref", "--format=%(refname) %(objectname)", *refs
    )
    assert git(path, "ls-tree", "-r", "refs/published/b") == git(repo.path, "ls-tree", "-r", "refs/published/b")
    fsck_strict(path)

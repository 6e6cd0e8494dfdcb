"""Publishing: fast-forward only, many entities atomically, main as the live site."""

from __future__ import annotations

import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities.api import IfMatch
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.errors import BasePathTaken, EntityNotFound, NotFastForward, StaleVersion
from gitstore.publishing import api as publishing
from gitstore.publishing.api import PublishTarget
from gitstore.repository import MAIN
from gitstore.storage.api import entity_path, read_ref
from gitstore.upkeep.repair import reindex, repair
from tests.conftest import ADA, GRACE, fsck_strict, git


def page(title: str, **extra: object) -> dict[str, object]:
    return {"type": "page", "title": title, **extra}


def test_publish_fast_forwards_the_published_ref_to_the_draft_tip(repo: ContentRepository) -> None:
    tip = content.put_draft(repo, "intro", page("Intro"), author=ADA).entity.commit
    record = content.publish(repo, [PublishTarget("intro")], author=GRACE)
    assert [(i.key, i.commit) for i in record.items] == [("intro", tip)]
    assert git(repo.path, "rev-parse", "refs/published/intro").strip() == tip
    assert git(repo.path, "log", "-1", "--format=%an|%s", "main").strip() == "Grace Hopper|Publish intro version 1"


def test_main_holds_each_live_entity_as_readable_files(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", page("Intro", fields={"body": "a\nb\n"}), author=ADA)
    content.publish(repo, [PublishTarget("intro")], author=ADA)
    path = entity_path("intro")
    assert git(repo.path, "show", f"main:{path}/fields/body.txt") == "a\nb\n"
    # the subtree in main is the very tree of the published commit
    assert git(repo.path, "rev-parse", f"main:{path}") == git(repo.path, "rev-parse", "refs/published/intro^{tree}")


def test_publish_of_an_older_version_is_allowed_only_as_a_fast_forward(
    repo: ContentRepository,
) -> None:
    content.put_draft(repo, "intro", page("One"), author=ADA)
    content.patch_draft(repo, "intro", {"title": "Two"}, author=ADA)
    content.patch_draft(repo, "intro", {"title": "Three"}, author=ADA)
    content.publish(repo, [PublishTarget("intro", version=2)], author=ADA)
    assert entities.get_entity(repo, "intro").title == "Two"
    with pytest.raises(NotFastForward):
        content.publish(repo, [PublishTarget("intro", version=1)], author=ADA)
    content.publish(repo, [PublishTarget("intro", version=3)], author=ADA)
    assert entities.get_entity(repo, "intro").title == "Three"


def test_publish_with_if_match_publishes_exactly_what_was_reviewed(repo: ContentRepository) -> None:
    reviewed = content.put_draft(repo, "intro", page("Reviewed"), author=ADA).entity.commit
    content.patch_draft(repo, "intro", {"title": "Sneaked in"}, author=GRACE)
    with pytest.raises(StaleVersion):
        content.publish(repo, [PublishTarget("intro", expected=IfMatch(reviewed))], author=ADA)
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "intro")


def test_publish_many_is_one_commit_on_main(repo: ContentRepository) -> None:
    for key in ("a", "b", "c"):
        content.put_draft(repo, key, page(key.upper()), author=ADA)
    folded_draft_head(repo)  # the changes are folded into `draft` (a publish would fold them first)
    before = git(repo.path, "rev-list", "--count", "--all").strip()
    record = content.publish(repo, [PublishTarget(k) for k in ("a", "b", "c")], author=ADA)
    assert git(repo.path, "rev-list", "--count", "main").strip() == "1"
    assert [i.key for i in record.items] == ["a", "b", "c"]
    assert int(git(repo.path, "rev-list", "--count", "--all").strip()) == int(before) + 1
    message = git(repo.path, "log", "-1", "--format=%B", "main")
    assert message.count("Gitstore-Published: ") == 3


def test_a_failing_target_publishes_nothing(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", page("A"), author=ADA)
    with pytest.raises(EntityNotFound):
        content.publish(repo, [PublishTarget("a"), PublishTarget("missing")], author=ADA)
    assert read_ref(repo.storage.git, MAIN) is None
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "a")


def test_publish_all_drafts_publishes_only_what_changed(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", page("A"), author=ADA)
    content.put_draft(repo, "b", page("B"), author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    content.patch_draft(repo, "b", {"title": "B2"}, author=ADA)
    record = content.publish_all_drafts(repo, author=ADA)
    assert [i.key for i in record.items] == ["b"]
    assert content.publish_all_drafts(repo, author=ADA).commit is None  # nothing left


def test_many_entities_publish_through_packed_refs(repo: ContentRepository) -> None:
    keys = [f"item-{n:03d}" for n in range(60)]  # over the packed-refs threshold
    for key in keys:
        content.put_draft(repo, key, page(key), author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    for key in keys:
        assert entities.get_entity(repo, key).title == key
    refs = git(repo.path, "for-each-ref", "--format=%(refname)", "refs/published").split()
    assert len(refs) == 60
    content.patch_draft(repo, "item-007", {"title": "changed"}, author=ADA)
    content.publish(repo, [PublishTarget("item-007")], author=ADA)  # a loose ref over a packed one
    assert entities.get_entity(repo, "item-007").title == "changed"
    fsck_strict(repo.path)


def test_base_path_is_unique_among_live_entities(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", page("A", base_path="/x"), author=ADA)
    content.publish(repo, [PublishTarget("a")], author=ADA)
    content.patch_draft(repo, "a", {"base_path": "/y"}, author=ADA)
    content.put_draft(repo, "b", page("B", base_path="/x"), author=ADA)  # a draft may sit at a live path
    with pytest.raises(BasePathTaken) as caught:
        content.publish(repo, [PublishTarget("b")], author=ADA)
    assert caught.value.extra["holder"] == "a"
    content.publish(repo, [PublishTarget("a"), PublishTarget("b")], author=ADA)  # a moves away in the same publish
    assert entities.get_entity(repo, "b").base_path == "/x"


def test_publish_of_a_delete_takes_the_entity_off_main(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", page("A"), author=ADA)
    content.publish(repo, [PublishTarget("a")], author=ADA)
    content.delete_entity(repo, "a", author=ADA)
    record = content.publish(repo, [PublishTarget("a")], author=ADA)
    assert record.items[0].deleted
    assert entity_path("a") not in git(repo.path, "ls-tree", "-r", "--name-only", "main")


def test_reindex_rebuilds_the_same_listing(repo: ContentRepository) -> None:
    from gitstore.index.api import ListFilter

    for key in ("a", "b", "c"):
        content.put_draft(repo, key, page(key), author=ADA)
    content.publish(repo, [PublishTarget("a")], author=ADA)
    where = ListFilter(state="draft", has_unpublished_changes=True)
    before = [e.key for e in entities.list_entities(repo, where).items]
    assert reindex(repo) == 3
    assert [e.key for e in entities.list_entities(repo, where).items] == before == ["b", "c"]
    assert entities.get_entity(repo, "a", version=1).title == "a"


def test_repair_finishes_a_publish_whose_refs_were_not_moved(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", page("A"), author=ADA)
    content.put_draft(repo, "b", page("B"), author=ADA)
    content.publish(repo, [PublishTarget("a"), PublishTarget("b")], author=ADA)
    # Simulate a crash right after the commit point: derived refs and index rolled back.
    git(repo.path, "update-ref", "-d", "refs/published/b")
    repo.index.record_published([], main_head="0" * 40)
    assert entities.get_entity(repo, "b").title == "B"  # readers already see it via main
    report = repair(repo)
    assert report.rolled_forward_publish
    assert git(repo.path, "rev-parse", "refs/published/b").strip() == entities.get_entity(repo, "b").commit


def test_a_publish_past_its_commit_point_is_not_an_error_when_a_derived_ref_stays_locked(
    repo: ContentRepository,
) -> None:
    """main is the commit point: a published ref someone else holds locked is caught up later,
    and the publish is answered as done, never as Busy."""
    import os
    import threading

    tip = content.put_draft(repo, "intro", page("Intro"), author=ADA).entity.commit
    lock = repo.path / "refs" / "published" / "intro.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    stop = threading.Event()

    def keep_fresh() -> None:  # a live holder, never stale
        while not stop.wait(0.2):
            os.utime(lock)

    holder = threading.Thread(target=keep_fresh)
    holder.start()
    try:
        record = content.publish(repo, [PublishTarget("intro")], author=GRACE)
    finally:
        stop.set()
        holder.join()
        lock.unlink()
    assert record.commit == git(repo.path, "rev-parse", "main").strip()
    assert entities.get_entity(repo, "intro").commit == tip  # readers trust main first
    assert publishing.roll_forward(repo)
    assert git(repo.path, "rev-parse", "refs/published/intro").strip() == tip

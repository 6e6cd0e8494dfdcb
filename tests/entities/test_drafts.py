"""Drafts through the library: numbering, views, delete, discard, restore, preconditions."""

from __future__ import annotations

import orjson
import pygit2
import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities.api import IfAbsent, IfMatch
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.errors import (
    BasePathTaken,
    Conflict,
    EntityNotFound,
    InvalidDocument,
    StaleVersion,
    VersionNotFound,
)
from gitstore.publishing import api as publishing
from gitstore.storage.api import entity_path
from tests.conftest import ADA, GRACE, fsck_strict, git

PAGE = {
    "type": "page",
    "title": "Intro",
    "fields": {"summary": "short", "body": "line one\nline two\n"},
}


def publish(repo: ContentRepository, *keys: str) -> None:
    content.publish(repo, [publishing.PublishTarget(k) for k in keys], author=ADA)


def test_create_then_read_draft_gives_version_1_edition_1(repo: ContentRepository) -> None:
    result = content.put_draft(repo, "intro", PAGE, author=ADA)
    assert result.created and result.changed
    draft = entities.get_entity(repo, "intro", state="draft")
    assert (draft.version, draft.edition, draft.state) == (1, 1, "draft")
    assert draft.fields == PAGE["fields"]
    assert draft.author.name == "Ada Lovelace"
    assert draft.has_unpublished_changes and draft.published_commit is None


def test_published_view_is_missing_until_first_publish(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "intro")
    publish(repo, "intro")
    live = entities.get_entity(repo, "intro")
    assert live.state == "published" and not live.has_unpublished_changes


def test_version_and_edition_across_edit_publish_discard_cycles(repo: ContentRepository) -> None:
    def numbers() -> tuple[int, int]:
        d = entities.get_entity(repo, "intro", state="draft")
        return d.version, d.edition

    content.put_draft(repo, "intro", PAGE, author=ADA)
    content.patch_draft(repo, "intro", {"title": "Intro v2"}, author=ADA)
    assert numbers() == (2, 1)  # still the first edition: never published
    publish(repo, "intro")
    assert numbers() == (2, 1)  # publishing makes no draft commit
    assert entities.get_entity(repo, "intro").edition == 1  # same from draft to published
    content.patch_draft(repo, "intro", {"title": "Intro v3"}, author=GRACE)
    assert numbers() == (3, 2)  # first change after a publish opens edition 2
    content.patch_draft(repo, "intro", {"title": "Intro v4"}, author=GRACE)
    assert numbers() == (4, 2)
    content.discard_draft(repo, "intro", author=ADA)
    assert numbers() == (5, 1)  # back to published content: back to its edition
    content.patch_draft(repo, "intro", {"title": "Intro v6"}, author=ADA)
    assert numbers() == (6, 2)  # versions are never reused, editions follow content
    publish(repo, "intro")
    assert entities.get_entity(repo, "intro").edition == 2


def test_write_that_changes_nothing_makes_no_commit(repo: ContentRepository) -> None:
    first = content.put_draft(repo, "intro", PAGE, author=ADA)
    again = content.put_draft(repo, "intro", PAGE, author=GRACE)
    assert not again.changed and again.entity.commit == first.entity.commit
    patched = content.patch_draft(repo, "intro", {"title": "Intro"}, author=GRACE)
    assert not patched.changed
    assert git(repo.path, "rev-list", "--count", "refs/drafts/intro").strip() == "1"


def test_files_are_pretty_json_with_text_fields_in_their_own_files(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    listing = git(repo.path, "ls-tree", "-r", "--name-only", "refs/drafts/intro").split()
    assert listing == ["entity.json", "fields/body.txt"]
    body = git(repo.path, "show", "refs/drafts/intro:fields/body.txt")
    assert body == "line one\nline two\n"
    text = git(repo.path, "show", "refs/drafts/intro:entity.json")
    assert text.splitlines()[1] == '  "base_path": null,'
    assert list(orjson.loads(text)) == sorted(orjson.loads(text))
    assert orjson.loads(text)["fields"] == {"summary": "short"}


def test_commit_author_and_message_say_who_did_what(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    content.patch_draft(repo, "intro", {"title": "New", "fields": {"summary": "longer"}}, author=GRACE)
    log = git(repo.path, "log", "--format=%an|%s", "refs/drafts/intro").splitlines()
    assert log == ["Grace Hopper|Update intro: title, fields.summary", "Ada Lovelace|Create intro"]


def test_soft_delete_hides_draft_but_stays_live_until_published(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    publish(repo, "intro")
    deleted = content.delete_entity(repo, "intro", author=GRACE)
    assert deleted.entity.deleted
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "intro", state="draft")
    assert entities.get_entity(repo, "intro").title == "Intro"  # still live
    publish(repo, "intro")
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "intro")
    assert "intro" not in git(repo.path, "ls-tree", "-r", "--name-only", "main")
    tombstone = entities.get_entity(repo, "intro", version=2)
    assert tombstone.deleted and tombstone.state == "published"


def test_put_after_delete_revives_the_same_history(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    content.delete_entity(repo, "intro", author=ADA)
    revived = content.put_draft(repo, "intro", PAGE, author=ADA, expected=IfAbsent())
    assert revived.entity.version == 3 and not revived.entity.deleted


def test_discard_keeps_the_discarded_work_in_history(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    publish(repo, "intro")
    content.patch_draft(repo, "intro", {"title": "Work in progress"}, author=GRACE)
    content.discard_draft(repo, "intro", author=ADA)
    draft = entities.get_entity(repo, "intro", state="draft")
    assert draft.title == "Intro" and not draft.has_unpublished_changes
    assert entities.get_entity(repo, "intro", version=2).title == "Work in progress"


def test_discard_of_never_published_entity_is_a_conflict(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    with pytest.raises(Conflict):
        content.discard_draft(repo, "intro", author=ADA)


def test_restore_makes_a_new_commit_with_the_old_content(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    content.patch_draft(repo, "intro", {"title": "Second"}, author=ADA)
    restored = content.restore_version(repo, "intro", 1, author=GRACE)
    assert restored.entity.version == 3 and restored.entity.title == "Intro"
    v1 = entities.get_entity(repo, "intro", version=1)
    assert git(repo.path, "rev-parse", f"{restored.entity.commit}^{{tree}}") == git(
        repo.path, "rev-parse", f"{v1.commit}^{{tree}}"
    )
    assert git(repo.path, "log", "-1", "--format=%s", "refs/drafts/intro").strip() == "Restore intro to version 1"


def test_read_by_version_and_by_commit(repo: ContentRepository) -> None:
    first = content.put_draft(repo, "intro", PAGE, author=ADA).entity
    content.patch_draft(repo, "intro", {"title": "Second"}, author=ADA)
    assert entities.get_entity(repo, "intro", commit=first.commit).title == "Intro"
    assert entities.get_entity(repo, "intro", version=1).state == "superseded"
    with pytest.raises(VersionNotFound):
        entities.get_entity(repo, "intro", version=3)
    other = content.put_draft(repo, "other", PAGE | {"title": "Other"}, author=ADA).entity
    with pytest.raises(VersionNotFound):  # a commit of another entity is not a version of this one
        entities.get_entity(repo, "intro", commit=other.commit)


def test_if_match_on_stale_commit_raises_stale_version_with_current(
    repo: ContentRepository,
) -> None:
    first = content.put_draft(repo, "intro", PAGE, author=ADA).entity
    second = content.patch_draft(repo, "intro", {"title": "Second"}, author=ADA, expected=IfMatch(first.commit)).entity
    with pytest.raises(StaleVersion) as caught:
        content.patch_draft(repo, "intro", {"title": "Lost"}, author=GRACE, expected=IfMatch(first.commit))
    assert caught.value.extra["current"] == second.commit
    assert entities.get_entity(repo, "intro", state="draft").title == "Second"


def test_if_absent_refuses_to_replace_an_existing_draft(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    with pytest.raises(StaleVersion):
        content.put_draft(repo, "intro", PAGE | {"title": "Again"}, author=ADA, expected=IfAbsent())


def test_base_path_is_unique_among_drafts(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", PAGE | {"base_path": "/guide"}, author=ADA)
    with pytest.raises(BasePathTaken) as caught:
        content.put_draft(repo, "b", PAGE | {"base_path": "/guide"}, author=ADA)
    assert caught.value.extra["holder"] == "a"
    content.patch_draft(repo, "a", {"base_path": "/guide-moved"}, author=ADA)
    content.put_draft(repo, "b", PAGE | {"base_path": "/guide"}, author=ADA)  # freed


def test_invalid_document_is_refused_with_every_problem(repo: ContentRepository) -> None:
    with pytest.raises(InvalidDocument) as caught:
        content.put_draft(repo, "intro", {"type": "Bad Type", "title": 3, "version": 9}, author=ADA)
    locs = {tuple(e["loc"]) for e in caught.value.extra["errors"]}
    assert {("type",), ("title",), ("version",)} <= locs
    assert pygit2.Repository(str(repo.path)).references.get("refs/drafts/intro") is None


def test_draft_branch_shows_every_change_for_git_users_once_folded(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    content.put_draft(repo, "other", PAGE | {"title": "Other"}, author=GRACE)
    publish(repo, "intro")  # publishing folds first: it follows every change before it
    content.patch_draft(repo, "intro", {"title": "Changed"}, author=GRACE)
    assert "Changed" not in git(repo.path, "show", "draft:" + entity_path("intro") + "/entity.json")  # not yet...
    folded_draft_head(repo)  # ...until something reads `draft`, or the service's fold a second later
    assert git(repo.path, "log", "--format=%an|%s", "draft").splitlines() == [
        "Grace Hopper|Update intro: title",
        "Grace Hopper|Create other",
        "Ada Lovelace|Create intro",
    ]
    assert git(repo.path, "log", "--format=%s", "draft").splitlines() == [
        "Update intro: title",
        "Create other",
        "Create intro",
    ]
    changed = git(repo.path, "diff", "--name-only", "main", "draft").split()
    assert sorted({p.split("/")[1] for p in changed}) == ["intro", "other"]
    fsck_strict(repo.path)


def test_list_versions_pages_newest_first(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", PAGE, author=ADA)
    for n in range(2, 8):
        content.patch_draft(repo, "intro", {"title": f"Title {n}"}, author=ADA)
    first = entities.list_versions(repo, "intro", limit=3)
    assert [v.version for v in first.items] == [7, 6, 5]
    second = entities.list_versions(repo, "intro", cursor=int(first.next_cursor or 0), limit=3)
    assert [v.version for v in second.items] == [4, 3, 2]
    last = entities.list_versions(repo, "intro", cursor=int(second.next_cursor or 0), limit=3)
    assert [v.version for v in last.items] == [1] and last.next_cursor is None

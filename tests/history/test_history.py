"""History and audit through the library: versions, diff, blame, restore, logs, as-of, merge."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities.api import IfMatch
from gitstore.errors import EntityNotFound, MergeConflict, NotFastForward
from gitstore.history import api as history
from gitstore.publishing import api as publishing
from tests.conftest import ADA, GRACE, fsck_strict, git

BODY = "Intro line.\nSecond line.\nThird line.\nFourth line.\nFifth line.\nSixth line.\n"


def page(**fields: object) -> dict[str, object]:
    return {"type": "page", "title": "Guide", "fields": {"body": BODY, "summary": "short"} | fields}


def publish(repo: ContentRepository, key: str = "guide") -> None:
    content.publish(repo, [publishing.PublishTarget(key)], author=ADA)


def test_versions_page_through_a_thousand_versions(repo: ContentRepository) -> None:
    content.put_draft(repo, "guide", page(n=0), author=ADA)
    for n in range(1, 1050):
        content.patch_draft(repo, "guide", {"fields": {"n": n}}, author=ADA)
    seen, cursor = [], None
    while True:
        result = entities.list_versions(repo, "guide", cursor=cursor, limit=200)
        seen += [v.version for v in result.items]
        if result.next_cursor is None:
            break
        cursor = int(result.next_cursor)
    assert seen == list(range(1050, 0, -1))
    assert entities.get_entity(repo, "guide", version=1).fields["n"] == 0
    assert entities.get_entity(repo, "guide", version=777).fields["n"] == 776


def test_versions_say_whether_and_when_they_went_live(repo: ContentRepository) -> None:
    content.put_draft(repo, "guide", page(), author=ADA)
    content.patch_draft(repo, "guide", {"title": "Two"}, author=ADA)
    publish(repo)
    content.patch_draft(repo, "guide", {"title": "Three"}, author=ADA)
    items = entities.list_versions(repo, "guide").items
    assert [(v.version, v.live, v.published_at is not None) for v in items] == [
        (3, False, False),
        (2, True, True),
        (1, False, False),
    ]


def test_diff_lists_field_adds_removes_changes_and_text_edits(repo: ContentRepository) -> None:
    content.put_draft(repo, "guide", page(colour="red"), author=ADA)
    publish(repo)
    content.put_draft(
        repo,
        "guide",
        page(body=BODY.replace("Third", "3rd"), weight=2, colour="red") | {"title": "Guide v2"},
        author=GRACE,
    )
    content.patch_draft(repo, "guide", {"fields": {"colour": None}}, author=GRACE)
    result = history.diff(repo, "guide")  # default: published -> draft
    changes = {(c.path, c.op): (c.old, c.new) for c in result.changes}
    assert changes == {
        ("/title", "replace"): ("Guide", "Guide v2"),
        ("/fields/colour", "remove"): ("red", None),
        ("/fields/weight", "add"): (None, 2),
        ("/fields/body", "replace"): (BODY, BODY.replace("Third", "3rd")),
    }
    assert "diff --git a/fields/body.txt b/fields/body.txt" in result.patch
    assert "-Third line.\n+3rd line.\n" in result.patch
    assert (result.from_version, result.to_version) == (1, 3)
    assert history.diff(repo, "guide", from_="2", to="3").changes[0].path == "/fields/colour"


def test_blame_attributes_each_field_to_whoever_last_changed_it(repo: ContentRepository) -> None:
    content.put_draft(repo, "guide", page(), author=ADA)
    content.patch_draft(repo, "guide", {"fields": {"summary": "longer summary"}}, author=GRACE)
    content.patch_draft(repo, "guide", {"fields": {"body": BODY.replace("Fifth", "5th")}}, author=GRACE)
    summary = history.blame(repo, "guide", field="summary")
    assert [(line.content.strip(), line.author.name, line.version) for line in summary.lines] == [
        ('"summary": "longer summary"', "Grace Hopper", 2)
    ]
    body = history.blame(repo, "guide", field="body")
    assert body.path == "fields/body.txt"
    assert [line.author.name for line in body.lines] == ["Ada Lovelace"] * 4 + ["Grace Hopper", "Ada Lovelace"]
    whole = history.blame(repo, "guide")
    title = next(line for line in whole.lines if line.content.strip().startswith('"title"'))
    assert title.author.name == "Ada Lovelace" and title.version == 1
    with pytest.raises(EntityNotFound):
        history.blame(repo, "guide", path="nope.txt")


def test_restore_then_publish_reproduces_old_content_and_keeps_history_linear(repo: ContentRepository) -> None:
    first = content.put_draft(repo, "guide", page(), author=ADA).entity
    publish(repo)
    content.put_draft(repo, "guide", page(body="Rewritten.\n") | {"title": "New"}, author=GRACE)
    publish(repo)
    with pytest.raises(NotFastForward):  # rollback of live content is never a rewind
        content.publish(repo, [publishing.PublishTarget("guide", version=1)], author=ADA)
    restored = content.restore_version(repo, "guide", commit=first.commit, author=ADA).entity
    assert git(repo.path, "log", "-1", "--format=%s", "refs/drafts/guide").strip() == "Restore guide to version 1"
    publish(repo)
    live = entities.get_entity(repo, "guide")
    assert (live.title, live.fields, live.commit) == (first.title, first.fields, restored.commit)
    assert git(repo.path, "rev-parse", f"{live.commit}^{{tree}}") == git(
        repo.path, "rev-parse", f"{first.commit}^{{tree}}"
    )
    assert git(repo.path, "rev-list", "--merges", "--count", "refs/drafts/guide").strip() == "0"
    assert git(repo.path, "rev-list", "--count", "refs/drafts/guide").strip() == "3"


def test_activity_and_publish_log_record_every_write_path(repo: ContentRepository) -> None:
    base = content.put_draft(repo, "guide", page(), author=ADA).entity.commit
    content.patch_draft(repo, "guide", {"title": "Two"}, author=GRACE)
    publish(repo)
    content.patch_draft(repo, "guide", {"title": "Three"}, author=GRACE)
    content.discard_draft(repo, "guide", author=ADA)
    content.restore_version(repo, "guide", 1, author=ADA)
    content.write_from_base(repo, "guide", base, patch={"fields": {"summary": "merged"}}, author=GRACE)
    content.delete_entity(repo, "guide", author=ADA)
    actions = [(c.action, c.version, c.author.name) for c in history.list_activity(repo).items]
    assert actions == [
        ("delete", 7, "Ada Lovelace"),
        ("update", 6, "Grace Hopper"),
        ("restore", 5, "Ada Lovelace"),
        ("discard", 4, "Ada Lovelace"),
        ("update", 3, "Grace Hopper"),
        ("update", 2, "Grace Hopper"),
        ("create", 1, "Ada Lovelace"),
    ]
    assert [c.version for c in history.list_activity(repo, author="grace@example.org").items] == [6, 3, 2]
    first_page = history.list_activity(repo, limit=3)
    rest = history.list_activity(repo, cursor=int(first_page.next_cursor or 0), limit=10)
    assert [c.version for c in first_page.items + rest.items] == [7, 6, 5, 4, 3, 2, 1]
    log = history.list_publishes(repo).items
    assert len(log) == 1 and log[0].items[0].key == "guide" and log[0].items[0].version == 2
    assert log[0].commit == git(repo.path, "rev-parse", "main").strip()


def test_as_of_reads_answer_what_was_live_then(repo: ContentRepository) -> None:
    before_anything = datetime.now(UTC) - timedelta(seconds=5)
    content.put_draft(repo, "guide", page() | {"title": "First"}, author=ADA)
    content.put_draft(repo, "other", page() | {"title": "Other"}, author=ADA)
    publish(repo)
    publish(repo, "other")
    time.sleep(1.1)
    after_first = datetime.now(UTC)
    time.sleep(1.1)
    content.patch_draft(repo, "guide", {"title": "Second"}, author=ADA)
    publish(repo)
    content.delete_entity(repo, "other", author=ADA)
    publish(repo, "other")
    assert history.get_entity_as_of(repo, "guide", after_first).title == "First"
    assert history.get_entity_as_of(repo, "guide", datetime.now(UTC)).title == "Second"
    with pytest.raises(EntityNotFound):
        history.get_entity_as_of(repo, "guide", before_anything)
    assert [e.key for e in history.list_entities_as_of(repo, after_first).items] == ["guide", "other"]
    assert [e.key for e in history.list_entities_as_of(repo, datetime.now(UTC)).items] == ["guide"]


def test_disjoint_stale_edits_merge_field_by_field_and_line_by_line(repo: ContentRepository) -> None:
    base = content.put_draft(repo, "guide", page(weight=1), author=ADA).entity.commit
    content.patch_draft(
        repo, "guide", {"title": "Theirs", "fields": {"body": BODY.replace("Second", "2nd")}}, author=GRACE
    )
    merged = content.write_from_base(
        repo, "guide", base, author=ADA, patch={"fields": {"weight": 2, "body": BODY.replace("Fifth", "5th")}}
    ).entity
    assert merged.title == "Theirs" and merged.fields["weight"] == 2
    assert merged.fields["body"] == BODY.replace("Second", "2nd").replace("Fifth", "5th")
    message = git(repo.path, "log", "-1", "--format=%B", "refs/drafts/guide")
    assert f"Gitstore-Merge-Base: {base}" in message and "Gitstore-Merged-Onto: " in message
    assert git(repo.path, "rev-list", "--merges", "--count", "refs/drafts/guide").strip() == "0"  # history stays linear


def test_adjacent_fields_merge_where_a_line_merge_of_json_would_not(repo: ContentRepository) -> None:
    base = content.put_draft(repo, "guide", page(a=1, b=1), author=ADA).entity.commit
    content.patch_draft(repo, "guide", {"fields": {"a": 2}}, author=GRACE)
    merged = content.write_from_base(repo, "guide", base, author=ADA, patch={"fields": {"b": 2}}).entity
    assert (merged.fields["a"], merged.fields["b"]) == (2, 2)


def test_overlapping_stale_edits_conflict_and_write_nothing(repo: ContentRepository) -> None:
    base = content.put_draft(repo, "guide", page(), author=ADA).entity.commit
    tip = content.patch_draft(
        repo, "guide", {"title": "Theirs", "fields": {"body": BODY.replace("Third", "3rd")}}, author=GRACE
    ).entity.commit
    refs_before = git(repo.path, "for-each-ref")
    with pytest.raises(MergeConflict) as caught:
        content.write_from_base(
            repo, "guide", base, author=ADA, patch={"title": "Mine", "fields": {"body": BODY.replace("Third", "III")}}
        )
    conflicts = {c["path"]: c for c in caught.value.extra["conflicts"]}
    assert conflicts["/title"] == {"path": "/title", "base": "Guide", "ours": "Theirs", "theirs": "Mine"}
    assert "/fields/body" in conflicts
    assert git(repo.path, "for-each-ref") == refs_before
    assert entities.get_entity(repo, "guide", state="draft").commit == tip


def test_merges_racing_plain_writes_keep_every_acknowledged_change(repo: ContentRepository) -> None:
    base = content.put_draft(repo, "guide", page(), author=ADA).entity.commit
    acked: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def merger(name: str) -> None:
        mine = base  # the last version this client saw: its own last write, never the others'
        try:
            for n in range(8):
                done = content.write_from_base(repo, "guide", mine, author=ADA, patch={"fields": {name: n}})
                mine = done.entity.commit
                with lock:
                    acked[name] = n
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def writer(name: str) -> None:
        try:
            for n in range(8):
                while True:
                    tip = entities.get_entity(repo, "guide", state="draft").commit
                    try:
                        content.patch_draft(repo, "guide", {"fields": {name: n}}, author=GRACE, expected=IfMatch(tip))
                        break
                    except Exception as exc:  # a lost race: read again and retry, as a client would
                        if type(exc).__name__ != "StaleVersion":
                            raise
                with lock:
                    acked[name] = n
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=merger, args=(f"m{i}",)) for i in range(3)]
    threads += [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = entities.get_entity(repo, "guide", state="draft").fields
    assert {name: final[name] for name in acked} == acked == {name: 7 for name in acked}
    assert len(acked) == 6
    fsck_strict(repo.path)

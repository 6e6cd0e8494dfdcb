"""The derived index on its own: what the library's writes record in it, and what it answers.

Each test writes real commits through the library (the index only ever holds rows git can
give again) and then asks `repo.index` directly, the way the layers above it do.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pygit2
import pytest

from gitstore import Author, ContentRepository, Store, content
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.events import read_events
from gitstore.index.api import ChangeRow, EntityIndex, FeedRow, ListFilter, Summary, Usage
from gitstore.index.schema import SCHEMA_VERSION
from gitstore.publishing.api import PublishNote, PublishTarget, published_row
from gitstore.repository import MAIN
from gitstore.storage.api import read_ref
from gitstore.upkeep.repair import reindex, repair
from tests.conftest import ADA, GRACE


def page(repo: ContentRepository, key: str, *, author: Author = ADA, **doc: Any) -> str:
    """Write `key`'s draft (a guide unless `type` says otherwise); its new commit."""
    body = {"type": "guide", "title": key.title(), **doc}
    return content.put_draft(repo, key, body, author=author).entity.commit


def publish(repo: ContentRepository, *keys: str, author: Author = GRACE, note: PublishNote | None = None) -> str:
    """Publish `keys` in one operation; its commit on `main`."""
    record = content.publish(repo, [PublishTarget(k) for k in keys], author=author, note=note)
    assert record.commit is not None
    return record.commit


def at(day: int) -> Author:
    """Ada, writing on the `day`th of January 2024 (the commit says so)."""
    return Author(ADA.name, ADA.email, datetime(2024, 1, day, 12, tzinfo=UTC))


def seconds(day: int) -> int:
    return int(datetime(2024, 1, day, 12, tzinfo=UTC).timestamp())


# -- drafts: listings, filters, cursors ---------------------------------------------------------


def test_drafts_list_in_key_order_filtered_and_paged_by_cursor(repo: ContentRepository) -> None:
    page(repo, "cats", locale="cy")
    page(repo, "apples")
    page(repo, "bees", type="news")
    page(repo, "dogs", type="news")
    index = repo.index

    everything = ListFilter()
    assert index.list_keys(everything, after=None, limit=2) == ["apples", "bees"]
    assert index.list_keys(everything, after="bees", limit=2) == ["cats", "dogs"]
    assert index.list_keys(everything, after="dogs", limit=2) == []
    assert index.list_keys(ListFilter(type="news"), after=None, limit=10) == ["bees", "dogs"]
    assert index.list_keys(ListFilter(locale="cy"), after=None, limit=10) == ["cats"]
    assert index.list_keys(ListFilter(state="published"), after=None, limit=10) == []

    publish(repo, "apples", "dogs")
    page(repo, "dogs", type="news", title="Dogs, revised")
    assert index.list_keys(ListFilter(state="published"), after=None, limit=10) == ["apples", "dogs"]
    assert index.list_keys(ListFilter(has_unpublished_changes=True), after=None, limit=10) == ["bees", "cats", "dogs"]
    assert index.list_keys(ListFilter(has_unpublished_changes=False), after=None, limit=10) == ["apples"]
    assert index.unpublished_keys() == ["bees", "cats", "dogs"]
    # The live listing shows what was published, not the draft's new title or type.
    assert index.summaries(["dogs"], "live")["dogs"].title == "Dogs"
    assert index.summaries(["dogs"], "draft")["dogs"].title == "Dogs, revised"


def test_a_deleted_draft_leaves_the_draft_listing_but_stays_live_until_published(repo: ContentRepository) -> None:
    page(repo, "apples", base_path="/apples")
    publish(repo, "apples")
    content.delete_entity(repo, "apples", author=ADA)
    index = repo.index

    assert index.list_keys(ListFilter(), after=None, limit=10) == []
    assert index.list_keys(ListFilter(state="published"), after=None, limit=10) == ["apples"]
    assert index.live_holders(["/apples", "/pears"]) == {"/apples": "apples"}
    assert index.draft_holder("/apples", other_than="pears") is None
    state = index.states(["apples", "unknown"])
    assert list(state) == ["apples"]
    assert state["apples"].draft_deleted and state["apples"].live_tree is not None
    assert index.counts() == {"entities": 1, "drafts": 0, "live": 1, "versions": 2, "publishes": 1}


def test_holders_of_base_paths_and_translations(repo: ContentRepository) -> None:
    page(repo, "tax", base_path="/tax")
    page(repo, "tax-cy", base_path="/tax.cy", locale="cy", content_id="tax")
    index = repo.index

    assert index.draft_holder("/tax", other_than="someone-else") == "tax"
    assert index.draft_holder("/tax", other_than="tax") is None  # a page may keep its own path
    assert index.translation_holder("tax", "cy", other_than="tax") == "tax-cy"
    assert index.translation_holder("tax", "fr", other_than="tax") is None
    assert index.live_translation_holders([("tax", "cy")]) == {}
    publish(repo, "tax", "tax-cy")
    assert index.live_translation_holders([("tax", "cy"), ("tax", "en"), ("tax", "fr")]) == {
        ("tax", "cy"): "tax-cy",
        ("tax", "en"): "tax",
    }
    assert [s.key for s in index.translations(["tax"], "live")] == ["tax", "tax-cy"]


def test_a_single_change_waits_to_be_folded_into_draft_then_is_recorded_as_folded(
    repo: ContentRepository,
) -> None:
    commit = page(repo, "apples")
    index = repo.index
    assert index.unfolded() == [("apples", commit)]
    assert index.unfolded_mark() is not None
    assert index.draft_commit_of("apples") == commit and index.draft_commits() == {"apples": commit}

    head = folded_draft_head(repo)  # folds what waits into refs/heads/draft
    assert index.unfolded() == [] and index.unfolded_mark() is None
    assert index.meta("draft_head") == head
    assert index.records_draft_head(head) and not index.records_draft_head("0" * 40)


# -- the version -> commit map and the activity log -----------------------------------------------


def test_each_version_maps_to_its_commit(repo: ContentRepository) -> None:
    first = page(repo, "apples")
    second = page(repo, "apples", title="Apples, ripe")
    index = repo.index

    assert index.commit_of_version("apples", 1) == first
    assert index.commit_of_version("apples", 2) == second
    assert index.commit_of_version("apples", 3) is None
    assert index.commit_of_version("pears", 1) is None
    assert index.commit_of_version("apples", 2**63) is None  # past SQLite's integers: no row, no error


def test_the_activity_log_is_newest_first_filtered_by_entity_or_author_and_paged_by_seq(
    repo: ContentRepository,
) -> None:
    a1 = page(repo, "apples", author=at(1))
    b1 = page(repo, "bees", author=Author(GRACE.name, GRACE.email, datetime(2024, 1, 2, 12, tzinfo=UTC)))
    a2 = page(repo, "apples", author=at(3), title="Apples, ripe")
    index = repo.index

    log = index.changes()
    assert [c for _, c in log] == [
        ChangeRow("apples", 2, a2, "update", ADA.name, ADA.email, seconds(3)),
        ChangeRow("bees", 1, b1, "create", GRACE.name, GRACE.email, seconds(2)),
        ChangeRow("apples", 1, a1, "create", ADA.name, ADA.email, seconds(1)),
    ]
    assert [c.commit for _, c in index.changes(key="apples")] == [a2, a1]
    assert [c.commit for _, c in index.changes(author="grace@example.org")] == [b1]
    assert [c.commit for _, c in index.changes(author="Ada Lovelace")] == [a2, a1]
    newest_seq = log[0][0]
    assert [c.commit for _, c in index.changes(before=newest_seq, limit=1)] == [b1]
    assert index.changes(before=2**70) == log  # a cursor past SQLite's integers reads from the top


# -- the publish log and what was live as of a publish --------------------------------------------


def test_the_publish_log_lists_each_publish_with_what_it_moved(repo: ContentRepository) -> None:
    a1 = page(repo, "apples", author=at(1))
    b1 = page(repo, "bees", author=at(1))
    first = publish(repo, "apples", "bees", author=at(2), note=PublishNote("major", "First edition"))
    content.delete_entity(repo, "bees", author=at(3))
    second = publish(repo, "bees", author=at(4))
    index = repo.index

    (seq2, p2), (seq1, p1) = index.publishes()
    assert seq2 > seq1
    assert (p1.commit, p1.author_email, p1.at, p1.update_type, p1.change_note) == (
        first,
        ADA.email,
        seconds(2),
        "major",
        "First edition",
    )
    assert p1.items == (("apples", a1, 1, False), ("bees", b1, 1, False))
    bees_deleted = index.commit_of_version("bees", 2)
    assert (p2.commit, p2.at, p2.items) == (second, seconds(4), (("bees", bees_deleted, 2, True),))
    assert [p.commit for _, p in index.publishes(before=seq2)] == [first]

    assert index.publish_seq_at(seconds(1)) is None
    assert index.publish_seq_at(seconds(3)) == seq1
    assert index.published_as_of("bees", seq1) == (b1, False)
    assert index.published_as_of("bees", seq2) == (bees_deleted, True)
    assert index.published_as_of("cats", seq2) is None
    assert index.live_keys_as_of(seq1, after=None, limit=10) == [("apples", a1), ("bees", b1)]
    assert index.live_keys_as_of(seq1, after="apples", limit=10) == [("bees", b1)]
    assert index.live_keys_as_of(seq2, after=None, limit=10) == [("apples", a1)]
    assert index.publish_times("bees") == {b1: seconds(2), bees_deleted: seconds(4)}


def test_keys_live_by_and_ever_published_are_facts_of_the_publish_log(repo: ContentRepository) -> None:
    a1 = page(repo, "apples")
    b1 = page(repo, "bees")
    first = publish(repo, "apples")
    a2 = page(repo, "apples", title="Apples, ripe")
    second = publish(repo, "apples", "bees")
    content.delete_entity(repo, "bees", author=ADA)
    never = page(repo, "cats")
    index = repo.index

    assert index.keys_live_by(["apples", "bees", "cats"], first) == {"apples"}
    assert index.keys_live_by(["apples", "bees", "cats"], second) == {"apples", "bees"}
    assert index.keys_live_by(["apples"], "0" * 40) == set()  # not a publish the log knows
    assert index.ever_published([a1, a2, b1, never]) == {a1, a2, b1}
    assert index.ever_live_keys() == {"apples", "bees"}


# -- the event feed ---------------------------------------------------------------------------------


def test_reading_events_fills_the_feed_tables_with_one_row_per_change_and_publish(repo: ContentRepository) -> None:
    a1 = page(repo, "apples", author=at(1))
    a2 = page(repo, "apples", author=at(2), title="Apples, ripe")
    main = publish(repo, "apples", author=at(3), note=PublishNote("minor", "Typo"))
    index = repo.index
    assert index.feed_tip("draft") is None and index.feed_end("main") == (0, 0)  # filled on demand

    read_events(repo)
    drafts = index.feed_after("draft", 0, 0, limit=10)
    assert [(r.key, r.commit, r.action, r.kind, r.at) for r in drafts] == [
        ("apples", a1, "create", "draft_changed", seconds(1)),
        ("apples", a2, "update", "draft_changed", seconds(2)),
    ]
    (published,) = index.feed_after("main", 0, 0, limit=10)
    assert (published.kind, published.key, published.commit, published.update_type, published.change_note) == (
        "published",
        "apples",
        a2,
        "minor",
        "Typo",
    )
    assert published.anchor == drafts[-1].anchor  # placed after the draft changes it saw
    depth, tip = index.feed_tip("main")  # type: ignore[misc]
    assert tip == main == str(read_ref(repo.storage.git, MAIN))
    assert index.feed_depth("main", main) == depth
    assert index.feed_commits_at("main", [depth, depth + 1]) == {depth: main}
    assert index.feed_depth_at("main", seconds(3)) == depth
    assert index.feed_depth_at("main", seconds(1)) == 0
    assert index.feed_knows("main", a2) and not index.feed_knows("main", a1)
    assert index.feed_end("main") == (published.depth, published.position)


def test_feed_rows_are_appended_once_read_after_a_cursor_and_forgotten_per_stream(tmp_path: Any) -> None:
    index = EntityIndex(tmp_path / "index.sqlite3")

    def event(depth: int, position: int, key: str) -> FeedRow:
        return FeedRow("draft", depth, position, depth, 100 + depth, "change", key, f"c-{key}", "create", "A", "a@x")

    rows = [event(1, 0, "apples"), event(2, 0, "bees"), event(2, 1, "cats")]
    commits = [(1, "d1", 101), (2, "d2", 102)]
    index.feed_append("draft", commits, rows)
    index.feed_append("draft", commits, rows)  # a second reader of the same history adds nothing

    assert index.feed_after("draft", 0, 0, limit=10) == rows
    assert index.feed_after("draft", 2, 0, limit=10) == [rows[2]]
    assert index.feed_after("draft", 0, 0, limit=1) == [rows[0]]
    assert index.feed_end("draft") == (2, 1) and index.feed_tip("draft") == (2, "d2")
    assert index.feed_after("main", 0, 0, limit=10) == []

    index.feed_forget("draft")
    assert index.feed_after("draft", 0, 0, limit=10) == [] and index.feed_tip("draft") is None


# -- links and members: reverse lookups and dependents -------------------------------------------


def test_links_are_recorded_per_view_and_looked_up_both_ways(repo: ContentRepository) -> None:
    page(repo, "tax")
    page(repo, "vat", links={"parent": ["tax"]})
    page(repo, "duty", links={"parent": ["tax"], "related": ["vat"]})
    index = repo.index

    assert index.links_of("duty", "draft") == {"parent": ["tax"], "related": ["vat"]}
    assert index.links_of("duty", "live") == {}
    assert index.targets_of(["vat", "duty"], "draft", ["parent"]) == {"tax"}
    assert index.targets_of(["duty"], "draft", ["parent", "related"]) == {"tax", "vat"}
    assert index.targets_of(["duty"], "draft", []) == set()
    sources = sorted((row[0], row[1]) for row in index.linking_to(["tax"], "draft", ["parent"]))
    assert sources == [("parent", "duty"), ("parent", "vat")]
    assert index.linking_to(["tax"], "live", ["parent"]) == []

    publish(repo, "tax", "vat")
    assert [row[1] for row in index.linking_to(["tax"], "live", ["parent"])] == ["vat"]
    assert index.summaries(["vat", "duty"], "live") == {
        "vat": Summary("vat", "guide", "Vat", None, "en", "vat", None),
    }


def test_dependents_follow_links_reverse_types_breadcrumbs_containers_and_translations(
    repo: ContentRepository,
) -> None:
    page(repo, "tax")
    page(repo, "tax-cy", locale="cy", content_id="tax")
    page(repo, "vat", links={"parent": ["tax"]})
    page(repo, "vat-rates", links={"parent": ["vat"]})
    page(repo, "news", links={"related": ["vat"]})
    page(repo, "lonely")
    index = repo.index
    rules: dict[str, Any] = {"reverse_types": ["parent", "related"], "breadcrumb_types": ["parent"]}

    # What links to tax (or its translation), everything below it along `parent`, its translation.
    assert index.dependents(["tax"], "draft", **rules) == {"tax-cy", "vat", "vat-rates"}
    # What vat links to with a reverse type (its parent, and that parent's translations).
    assert index.dependents(["vat"], "draft", **rules) == {"tax", "tax-cy", "vat-rates", "news"}
    assert index.dependents(["vat"], "draft", reverse_types=[], breadcrumb_types=[]) == {"vat-rates", "news"}
    assert index.dependents(["lonely"], "draft", **rules) == set()
    assert index.dependents(["tax"], "live", **rules) == set()  # nothing is live yet
    each = index.dependents_each(["tax", "vat", "lonely"], "draft", **rules)
    assert each == {
        "tax": index.dependents(["tax"], "draft", **rules),
        "vat": index.dependents(["vat"], "draft", **rules),
        "lonely": set(),
    }


def test_members_give_where_used_and_containers_above_are_dependents(repo: ContentRepository) -> None:
    content.put_draft(repo, "quiz", {"type": "component.html", "title": "Quiz"}, author=ADA)
    quiz_v1 = repo.index.draft_commit_of("quiz")
    unit = {"type": "unit", "title": "Unit", "members": [{"key": "quiz", "pin": None}]}
    content.put_draft(repo, "unit-1", unit, author=ADA)
    twice = [{"key": "quiz", "pin": None}, {"key": "quiz", "pin": quiz_v1}]  # pinned once is pinned
    pinned = {"type": "unit", "title": "Unit 2", "members": twice}
    content.put_draft(repo, "unit-2", pinned, author=ADA)
    index = repo.index

    assert index.usages("quiz") == [Usage("unit-1", "draft", False), Usage("unit-2", "draft", True)]
    assert index.containers_of_type("unit") == [Usage("unit-1", "draft", False), Usage("unit-2", "draft", False)]
    assert index.dependents(["quiz"], "draft", reverse_types=[], breadcrumb_types=[]) == {"unit-1", "unit-2"}

    content.publish(repo, [PublishTarget("unit-1")], author=GRACE)
    assert index.usages("quiz") == [
        Usage("unit-1", "draft", False),
        Usage("unit-1", "live", False),
        Usage("unit-2", "draft", True),
    ]


def test_as_if_published_shows_rows_to_this_thread_only_inside_the_block(repo: ContentRepository) -> None:
    page(repo, "tax")
    page(repo, "vat", links={"parent": ["tax"]})
    git = repo.storage.git
    rows = [published_row(git, key, pygit2.Oid(hex=repo.index.draft_commit_of(key))) for key in ("tax", "vat")]
    index = repo.index

    with index.as_if_published(rows):
        assert sorted(index.summaries(["tax", "vat"], "live")) == ["tax", "vat"]
        assert index.dependents(["tax"], "live", reverse_types=[], breadcrumb_types=["parent"]) == {"vat"}
    assert index.summaries(["tax", "vat"], "live") == {}
    assert index.counts()["live"] == 0


# -- clear, rebuild, compact, schema versions -------------------------------------------------------


def answers(index: EntityIndex) -> dict[str, Any]:
    """Everything a rebuild must give again, asked the way the layers above ask."""
    return {
        "drafts": index.list_keys(ListFilter(), after=None, limit=100),
        "live": index.list_keys(ListFilter(state="published"), after=None, limit=100),
        "draft_commits": index.draft_commits(),
        "changes": [c for _, c in index.changes(limit=100)],
        "publishes": [p for _, p in index.publishes(limit=100)],
        "links": index.links_of("vat", "live"),
        "usages": index.usages("quiz"),
        "counts": index.counts(),
        "main_head": index.meta("main_head"),
        "draft_head": index.meta("draft_head"),
    }


def test_clear_empties_every_answer_and_a_reindex_gives_the_same_answers_again(repo: ContentRepository) -> None:
    page(repo, "tax", author=at(1))
    page(repo, "vat", author=at(2), links={"parent": ["tax"]})
    content.put_draft(repo, "quiz", {"type": "component.html", "title": "Quiz"}, author=at(3))
    unit = {"type": "unit", "title": "Unit", "members": [{"key": "quiz", "pin": None}]}
    content.put_draft(repo, "unit-1", unit, author=at(4))
    publish(repo, "tax", "vat", author=at(5), note=PublishNote("major", "Launch"))
    content.publish(repo, [PublishTarget("unit-1")], author=at(6))
    page(repo, "vat", author=at(7), title="VAT", links={"parent": ["tax"]})
    folded_draft_head(repo)
    index = repo.index
    before = answers(index)
    assert before["counts"] == {"entities": 4, "drafts": 4, "live": 4, "versions": 5, "publishes": 2}

    index.clear()
    assert index.counts() == {"entities": 0, "drafts": 0, "live": 0, "versions": 0, "publishes": 0}
    assert index.changes() == [] and index.publishes() == [] and index.meta("main_head") is None
    assert index.usages("quiz") == [] and index.links_of("vat", "live") == {} and index.feed_tip("draft") is None

    assert reindex(repo) == 4
    assert answers(index) == before


def test_compact_leaves_no_trace_of_cleared_rows_in_the_file(repo: ContentRepository) -> None:
    secret = "Quarterly figures, embargoed"
    page(repo, "report", title=secret)
    for n in range(50):  # enough rows that clearing them frees whole pages
        page(repo, f"page-{n}", title=f"Page {n}", fields={"body": "words " * 200})
    index = repo.index
    index.clear()
    assert index._db().execute("PRAGMA freelist_count").fetchone()[0] > 0

    index.compact()
    assert index._db().execute("PRAGMA freelist_count").fetchone()[0] == 0
    wal = index.path.with_name(index.path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert secret.encode() not in index.path.read_bytes()
    assert index.counts()["entities"] == 0


def test_an_index_of_another_schema_version_is_dropped_then_rebuilt_by_repair(store: Store) -> None:
    repo = store.create_repository("old", "")
    commit = page(repo, "apples")
    db = sqlite3.connect(repo.index.path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")  # as an older release left it
    db.close()

    reopened = Store(store.data_dir).repository("old")  # a new process opens the file
    assert reopened.index.needs_rebuild
    assert reopened.index.draft_commits() == {}  # the old tables are gone: nothing stale is answered
    assert not EntityIndex(reopened.index.path).needs_rebuild  # the new schema is kept

    repair(reopened)
    assert reopened.index.draft_commits() == {"apples": commit}
    assert not reopened.index.needs_rebuild


def test_a_new_file_and_the_current_schema_need_no_rebuild(tmp_path: Any) -> None:
    path = tmp_path / "index.sqlite3"
    assert not EntityIndex(path).needs_rebuild
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert not EntityIndex(path).needs_rebuild


@pytest.mark.parametrize("view", ["draft", "live"])
def test_forget_drops_an_entitys_rows_but_keeps_its_activity(repo: ContentRepository, view: str) -> None:
    page(repo, "tax")
    page(repo, "vat", links={"parent": ["tax"]})
    publish(repo, "tax", "vat")
    index = repo.index

    index.forget(["vat"])
    assert index.draft_commit_of("vat") is None
    assert index.links_of("vat", view) == {} and index.linking_to(["tax"], view, ["parent"]) == []
    assert [c.key for _, c in index.changes(key="vat")] == ["vat"]
    assert "vat" in index.ever_live_keys()  # the publish log remembers it was live

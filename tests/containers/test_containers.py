"""Seed 004 (Open edX ADR 17), scenario by scenario, on git."""

from __future__ import annotations

from typing import Any

import pytest

from gitstore import ContentRepository, content
from gitstore.containers import api as containers
from gitstore.containers import rules
from gitstore.containers.api import View
from gitstore.entities import api as entities
from gitstore.entities.document import Member
from gitstore.errors import Conflict, InvalidDocument, InvalidInput, NotAContainer, NotFastForward
from gitstore.publishing.api import PublishTarget
from gitstore.repository import DRAFT
from tests.conftest import ADA, GRACE, fsck_strict, git


def component(repo: ContentRepository, key: str, title: str | None = None, kind: str = "component.html") -> str:
    return content.put_draft(repo, key, {"type": kind, "title": title or key}, author=ADA).entity.commit


def container(repo: ContentRepository, key: str, kind: str, members: list[Any], title: str | None = None) -> str:
    rows = [m if isinstance(m, dict) else {"key": m, "pin": None} for m in members]
    doc = {"type": kind, "title": title or key, "members": rows}
    return content.put_draft(repo, key, doc, author=ADA).entity.commit


def publish(repo: ContentRepository, *keys: str) -> list[str]:
    record = content.publish(repo, [PublishTarget(k) for k in keys], author=GRACE)
    return [item.key for item in record.items]


def keys_of(node: containers.TreeNode) -> list[Any]:
    return [(m.key, keys_of(m)) if m.members is not None else m.key for m in node.members or []]


def titles(repo: ContentRepository, key: str, state: str) -> list[str]:
    return [m.title for m in containers.resolve_tree(repo, key, View(state)).members or []]


# -- the manifest -------------------------------------------------------------------------------


def test_a_manifest_is_ordered_one_member_per_line_and_allows_duplicates(repo: ContentRepository) -> None:
    for key in ("intro", "quiz"):
        component(repo, key)
    pin = entities.get_entity(repo, "quiz", state="draft").commit
    container(repo, "unit-1", "unit", ["quiz", "intro", {"key": "quiz", "pin": pin}])

    tree = containers.resolve_tree(repo, "unit-1", View("draft"))
    assert [(m.key, m.pinned) for m in tree.members or []] == [("quiz", False), ("intro", False), ("quiz", True)]
    manifest = git(repo.path, "show", "refs/drafts/unit-1:members.json")
    assert manifest.splitlines() == [
        "[",
        '  {"key":"quiz","pin":null},',
        '  {"key":"intro","pin":null},',
        f'  {{"key":"quiz","pin":"{pin}"}}',
        "]",
    ]


@pytest.mark.parametrize(
    "pin, why",
    [
        ("HEAD~1", "a ref expression"),
        ("abc123", "abbreviated"),
        ("f" * 40, "unknown"),
    ],
)
def test_a_pin_that_is_not_a_full_known_commit_is_refused(repo: ContentRepository, pin: str, why: str) -> None:
    component(repo, "intro")
    with pytest.raises(InvalidDocument):
        container(repo, "unit-1", "unit", [{"key": "intro", "pin": pin}])
    assert git(repo.path, "for-each-ref", "refs/drafts/unit-1") == ""


def test_a_pin_must_be_a_commit_of_the_members_own_branch(repo: ContentRepository) -> None:
    component(repo, "intro")
    other = component(repo, "quiz")
    tree = git(repo.path, "rev-parse", f"{other}^{{tree}}").strip()
    for pin in (other, tree):
        with pytest.raises(InvalidDocument) as raised:
            container(repo, "unit-1", "unit", [{"key": "intro", "pin": pin}])
        assert raised.value.extra["errors"][0]["loc"] == ["members", 0, "pin"]


def test_unknown_and_deleted_members_are_refused_naming_each(repo: ContentRepository) -> None:
    component(repo, "gone")
    content.delete_entity(repo, "gone", author=ADA)
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "unit-1", "unit", ["nope", "gone"])
    assert [e["loc"] for e in raised.value.extra["errors"]] == [["members", 0, "key"], ["members", 1, "key"]]


# -- types ----------------------------------------------------------------------------------------


def test_types_restrict_members_and_a_repository_can_override_them(repo: ContentRepository) -> None:
    component(repo, "intro")
    container(repo, "unit-1", "unit", ["intro"])  # component.html is a component
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "section-1", "section", ["unit-1"])
    assert "unit-1" in raised.value.extra["errors"][0]["msg"]
    with pytest.raises(InvalidDocument, match="holds no members"):
        container(repo, "intro", "component.html", [])

    kind = content.set_container_type(repo, "section", ["subsection", "unit"], author=ADA)
    assert kind.allowed_member_types == ("subsection", "unit") and kind.overridden
    container(repo, "section-1", "section", ["unit-1"])
    assert containers.container_type(repo, "section").allowed_member_types == ("subsection", "unit")
    assert git(repo.path, "log", "--format=%s", "refs/meta/types").strip() == "Type section holds subsection, unit"


def test_a_members_type_change_that_its_containers_do_not_allow_is_refused(repo: ContentRepository) -> None:
    component(repo, "c3", kind="component.problem")
    container(repo, "unit-1", "unit", ["c3"])
    container(repo, "unit-2", "unit", ["c3"])
    publish(repo, "unit-1")
    container(repo, "unit-1", "unit", [])  # its live version still holds c3
    container(repo, "box", "container", ["c3"])  # holds anything
    before = git(repo.path, "for-each-ref")
    with pytest.raises(InvalidDocument) as raised:
        content.patch_draft(repo, "c3", {"type": "section"}, author=ADA)
    assert raised.value.extra["containers"] == ["unit-1", "unit-2"]
    assert [e["msg"] for e in raised.value.extra["errors"]] == [
        "the live unit 'unit-1' holds component; it would hold 'c3', a section",
        "the unit 'unit-2' holds component; it would hold 'c3', a section",
    ]
    assert git(repo.path, "for-each-ref") == before
    content.patch_draft(repo, "c3", {"type": "component.html"}, author=ADA)  # still a component


def test_a_type_registry_change_that_existing_containers_break_is_refused(repo: ContentRepository) -> None:
    component(repo, "c1")
    container(repo, "unit-1", "unit", ["c1"])
    container(repo, "unit-2", "unit", [])
    before = git(repo.path, "for-each-ref")
    with pytest.raises(Conflict) as raised:
        content.set_container_type(repo, "unit", ["component.problem"], author=ADA)
    assert raised.value.extra["containers"] == ["unit-1"]
    assert git(repo.path, "for-each-ref") == before
    content.set_container_type(repo, "unit", ["component.html", "component.problem"], author=ADA)


def test_a_generic_container_holds_anything(repo: ContentRepository) -> None:
    component(repo, "intro", kind="page")
    container(repo, "unit-1", "unit", [])
    container(repo, "box", "container", ["intro", "unit-1"])
    assert keys_of(containers.resolve_tree(repo, "box", View("draft"))) == ["intro", ("unit-1", [])]


# -- cycles ---------------------------------------------------------------------------------------


def test_a_container_may_not_contain_itself_at_any_depth(repo: ContentRepository) -> None:
    container(repo, "a", "container", [])
    with pytest.raises(InvalidDocument, match="rule"):
        container(repo, "a", "container", ["a"])
    container(repo, "b", "container", ["a"])
    container(repo, "c", "container", ["b"])
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "a", "container", ["c"])
    assert raised.value.extra["errors"][0]["msg"] == "a cycle: a > c > b > a"


def test_a_cycle_through_a_pinned_version_is_refused_too(repo: ContentRepository) -> None:
    container(repo, "a", "container", [])
    b_v1 = container(repo, "b", "container", ["a"])
    container(repo, "b", "container", [])  # b's draft no longer holds a, but version 1 does
    with pytest.raises(InvalidDocument, match="rule"):
        container(repo, "a", "container", [{"key": "b", "pin": b_v1}])
    container(repo, "a", "container", ["b"])  # unpinned: b's draft holds nothing, no cycle


def test_a_cycle_through_a_deep_chain_is_refused_naming_the_way_round(repo: ContentRepository) -> None:
    container(repo, "c", "container", [])
    container(repo, "b", "container", ["c"])
    container(repo, "a", "container", ["b"])  # a > b > c
    before = git(repo.path, "for-each-ref")
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "c", "container", ["a"])
    assert raised.value.extra["errors"] == [{"loc": ["members", 0], "msg": "a cycle: c > a > b > c"}]
    assert git(repo.path, "for-each-ref") == before
    container(repo, "d", "container", ["a"])  # above the chain, not in it: no cycle
    container(repo, "c", "container", [])  # a no-op: c holds nothing already


def test_a_container_naming_itself_beside_members_it_keeps_is_refused_at_that_row(repo: ContentRepository) -> None:
    component(repo, "intro")
    container(repo, "box", "container", ["intro"])
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "box", "container", ["intro", "box"])
    assert raised.value.extra["errors"] == [{"loc": ["members", 1], "msg": "'box' cannot contain itself"}]


def test_a_cycle_that_runs_through_a_pinned_version_below_a_draft_is_found(repo: ContentRepository) -> None:
    container(repo, "x", "container", [])
    b_v1 = container(repo, "b", "container", ["x"])
    container(repo, "b", "container", [])  # no draft holds x any more; b's version 1 still does
    container(repo, "a", "container", [{"key": "b", "pin": b_v1}])
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "x", "container", ["a"])
    assert raised.value.extra["errors"][0]["msg"] == "a cycle: x > a > b > x"


def test_only_the_members_a_write_adds_are_read_unless_the_type_changes(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("c1", "c2", "c3"):
        component(repo, key)
    container(repo, "unit-1", "unit", ["c1", "c2"])
    read: list[str] = []
    reading = rules.member_snapshot
    monkeypatch.setattr(rules, "member_snapshot", lambda r, m: read.append(m.key) or reading(r, m))
    container(repo, "unit-1", "unit", ["c1", "c2"], title="Unit one")  # the same manifest, a new title
    assert read == []
    container(repo, "unit-1", "unit", ["c2", "c3", "c1"])  # reordered, one added
    assert read == ["c3"]
    read.clear()
    container(repo, "unit-1", "container", ["c2", "c3", "c1"])  # a new type: every member checked again
    assert read == ["c2", "c3", "c1"]


def test_a_type_rule_refuses_the_member_added_and_names_only_that_row(repo: ContentRepository) -> None:
    component(repo, "intro")
    container(repo, "unit-1", "unit", ["intro"])
    container(repo, "ss-1", "subsection", [])
    content.set_container_type(repo, "section", ["subsection", "unit"], author=ADA)
    container(repo, "section-1", "section", ["unit-1"])  # legal by the repository's override
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "section-1", "section", ["unit-1", "ss-1", "intro"])
    assert raised.value.extra["errors"] == [
        {"loc": ["members", 2], "msg": "a section holds subsection, unit; 'intro' is a component.html"}
    ]
    container(repo, "section-1", "section", ["unit-1", "ss-1"])
    with pytest.raises(InvalidDocument) as raised:
        container(repo, "section-1", "subsection", ["unit-1", "ss-1"])  # a type change checks every row
    assert [e["loc"] for e in raised.value.extra["errors"]] == [["members", 1]]


# -- versions -------------------------------------------------------------------------------------


def test_a_new_version_only_when_the_container_itself_changes(repo: ContentRepository) -> None:
    component(repo, "intro")
    container(repo, "unit-1", "unit", ["intro"])
    content.patch_draft(repo, "intro", {"title": "Welcome"}, author=ADA)
    assert entities.get_entity(repo, "unit-1", state="draft").version == 1
    again = content.put_draft(
        repo, "unit-1", {"type": "unit", "title": "unit-1", "members": [{"key": "intro", "pin": None}]}, author=ADA
    )
    assert not again.changed and again.entity.version == 1
    for change in ({"title": "Unit one"}, {"members": []}):
        assert content.patch_draft(repo, "unit-1", change, author=ADA).entity.version > 1


def test_the_three_lists_of_a_container_version(repo: ContentRepository) -> None:
    intro_v1 = component(repo, "intro")
    quiz_v1 = component(repo, "quiz")
    container(repo, "unit-1", "unit", ["intro", {"key": "quiz", "pin": quiz_v1}])
    intro_v2 = content.patch_draft(repo, "intro", {"title": "Welcome"}, author=ADA).entity.commit
    content.patch_draft(repo, "quiz", {"title": "Quiz 2"}, author=ADA)

    assert containers.member_list(repo, "unit-1", version=1) == [Member("intro", None), Member("quiz", quiz_v1)]
    assert containers.member_list(repo, "unit-1", version=1, kind="initial") == [
        Member("intro", intro_v1),
        Member("quiz", quiz_v1),
    ]
    with pytest.raises(Conflict, match="latest"):
        containers.member_list(repo, "unit-1", version=1, kind="frozen")

    content.patch_draft(repo, "unit-1", {"title": "Unit one"}, author=ADA)  # version 2 freezes version 1
    assert containers.member_list(repo, "unit-1", version=1, kind="frozen") == [
        Member("intro", intro_v2),
        Member("quiz", quiz_v1),
    ]
    assert containers.member_list(repo, "unit-1", version=2, kind="initial") == [
        Member("intro", intro_v2),
        Member("quiz", quiz_v1),
    ]
    # immutable: later member edits change no list of an existing version
    content.patch_draft(repo, "intro", {"title": "Welcome again"}, author=ADA)
    assert containers.member_list(repo, "unit-1", version=2, kind="initial")[0] == Member("intro", intro_v2)
    with pytest.raises(NotAContainer):
        containers.member_list(repo, "intro")
    with pytest.raises(InvalidInput):
        containers.member_list(repo, "unit-1", kind="latest")


def test_restoring_a_container_version_gives_back_its_manifest_byte_for_byte(repo: ContentRepository) -> None:
    for key in ("a", "b"):
        component(repo, key)
    v1 = container(repo, "unit-1", "unit", ["a", "b"])
    container(repo, "unit-1", "unit", ["b"])
    restored = content.restore_version(repo, "unit-1", 1, author=ADA).entity
    assert git(repo.path, "rev-parse", f"{v1}^{{tree}}") == git(repo.path, "rev-parse", f"{restored.commit}^{{tree}}")
    assert restored.version == 3


# -- publishing -----------------------------------------------------------------------------------


def build_course(repo: ContentRepository) -> None:
    component(repo, "c1")
    component(repo, "c2")
    container(repo, "u1", "unit", ["c1", "c2"])
    container(repo, "ss1", "subsection", ["u1"])
    container(repo, "s1", "section", ["ss1"])
    container(repo, "course", "course", ["s1"])


def test_publishing_a_container_publishes_every_draft_below_it_and_never_its_parents(
    repo: ContentRepository,
) -> None:
    build_course(repo)
    assert publish(repo, "ss1") == ["c1", "c2", "ss1", "u1"]
    with pytest.raises(Exception):  # noqa: B017 - the parents were not published
        entities.get_entity(repo, "s1")
    assert publish(repo, "course") == ["course", "s1"]
    tree = containers.resolve_tree(repo, "course", View("published"))
    assert keys_of(tree) == [("s1", [("ss1", [("u1", ["c1", "c2"])])])]
    assert not tree.contains_unpublished_changes
    fsck_strict(repo.path)


def test_a_shared_member_published_through_one_unit_changes_the_other_units_live_view(
    repo: ContentRepository,
) -> None:
    component(repo, "shared", "v1")
    container(repo, "u1", "unit", ["shared"])
    container(repo, "u2", "unit", ["shared"])
    publish(repo, "u1", "u2")
    content.patch_draft(repo, "shared", {"title": "v2"}, author=ADA)
    assert titles(repo, "u2", "published") == ["v1"]
    assert containers.resolve_tree(repo, "u2", View("draft")).contains_unpublished_changes

    assert publish(repo, "u1") == ["shared"]
    assert titles(repo, "u2", "published") == ["v2"]
    assert entities.get_entity(repo, "u2").version == 1  # no new container version
    assert not containers.resolve_tree(repo, "u2", View("draft")).contains_unpublished_changes


def test_edits_to_a_pinned_member_change_nothing(repo: ContentRepository) -> None:
    v1 = component(repo, "quiz", "v1")
    publish(repo, "quiz")
    container(repo, "u1", "unit", [{"key": "quiz", "pin": v1}])
    publish(repo, "u1")
    content.patch_draft(repo, "quiz", {"title": "v2"}, author=ADA)
    assert titles(repo, "u1", "draft") == titles(repo, "u1", "published") == ["v1"]
    assert not containers.resolve_tree(repo, "u1", View("draft")).contains_unpublished_changes
    assert publish(repo, "u1") == []  # nothing to publish: the pinned member is not republished
    assert entities.get_entity(repo, "quiz").title == "v1"


def test_a_pin_to_a_never_published_version_is_published_with_the_container(repo: ContentRepository) -> None:
    component(repo, "quiz", "v1")
    publish(repo, "quiz")
    v2 = content.patch_draft(repo, "quiz", {"title": "v2"}, author=ADA).entity.commit
    content.patch_draft(repo, "quiz", {"title": "v3"}, author=ADA)
    container(repo, "u1", "unit", [{"key": "quiz", "pin": v2}])
    assert publish(repo, "u1") == ["quiz", "u1"]
    assert entities.get_entity(repo, "quiz").commit == v2  # live at the pinned version, not the draft


def test_a_pin_older_than_what_is_live_and_never_published_is_refused(repo: ContentRepository) -> None:
    v1 = component(repo, "quiz", "v1")
    content.patch_draft(repo, "quiz", {"title": "v2"}, author=ADA)
    publish(repo, "quiz")  # v2 live; v1 never was
    container(repo, "u1", "unit", [{"key": "quiz", "pin": v1}])
    with pytest.raises(NotFastForward, match="never live"):
        publish(repo, "u1")
    with pytest.raises(Exception):  # noqa: B017 - nothing was published
        entities.get_entity(repo, "u1")


def test_removing_a_member_is_a_new_version_and_stays_live_until_published(repo: ContentRepository) -> None:
    for key in ("a", "b"):
        component(repo, key)
    container(repo, "u1", "unit", ["a", "b"])
    publish(repo, "u1")
    assert content.patch_draft(repo, "u1", {"members": [{"key": "b", "pin": None}]}, author=ADA).entity.version == 2
    assert titles(repo, "u1", "published") == ["a", "b"]
    assert titles(repo, "u1", "draft") == ["b"]
    publish(repo, "u1")
    assert titles(repo, "u1", "published") == ["b"]


# -- soft delete ----------------------------------------------------------------------------------


def test_deleting_a_shared_member_versions_every_container_in_one_batch(repo: ContentRepository) -> None:
    v1 = component(repo, "shared")
    component(repo, "other")
    container(repo, "u1", "unit", ["shared", "other"])
    container(repo, "u2", "unit", [{"key": "shared", "pin": v1}])
    publish(repo, "u1", "u2")
    draft_before = git(repo.path, "rev-parse", DRAFT).strip()

    content.delete_entity(repo, "shared", author=ADA)

    # one commit on `draft` records all three changes: the atomic batch
    assert git(repo.path, "rev-list", "--count", f"{draft_before}..{DRAFT}").strip() == "1"
    batch = git(repo.path, "log", "-1", "--format=%B", DRAFT)
    assert sorted(line.split()[1] for line in batch.splitlines() if line.startswith("Gitstore-Batch:")) == [
        "shared",
        "u1",
        "u2",
    ]
    for unit in ("u1", "u2"):
        draft = entities.get_entity(repo, unit, state="draft")
        assert draft.version == 2 and "shared" not in [m.key for m in draft.members or ()]
        # the author-defined list of version 1 is untouched by the delete
        assert "shared" in [m.key for m in containers.member_list(repo, unit, version=1)]
    assert titles(repo, "u1", "published") == ["shared", "other"]  # live until the delete is published

    assert publish(repo, "shared") == ["shared", "u1", "u2"]
    assert titles(repo, "u1", "published") == ["other"]
    assert titles(repo, "u2", "published") == []
    fsck_strict(repo.path)


def test_a_frozen_list_pins_a_deleted_member_at_its_last_version_with_content(repo: ContentRepository) -> None:
    """Issue 20: the delete batch froze the container's previous version with the member at its
    delete tombstone, a version with no content, instead of the last one it showed."""
    component(repo, "shared")
    last = content.patch_draft(repo, "shared", {"title": "shared, edited"}, author=ADA).entity.commit
    container(repo, "u1", "unit", ["shared"])
    content.delete_entity(repo, "shared", author=ADA)  # u1 version 2 freezes version 1

    assert containers.member_list(repo, "u1", version=1, kind="frozen") == [Member("shared", last)]
    assert entities.get_entity(repo, "shared", version=2).commit == last


def test_a_delete_publish_brings_the_containers_but_not_their_other_drafts(repo: ContentRepository) -> None:
    for key in ("a", "b"):
        component(repo, key)
    container(repo, "u1", "unit", ["a", "b"])
    publish(repo, "u1")
    content.patch_draft(repo, "b", {"title": "b edited"}, author=ADA)
    content.delete_entity(repo, "a", author=ADA)
    assert publish(repo, "a") == ["a", "u1"]
    assert titles(repo, "u1", "published") == ["b"]  # b's edit is still only a draft


def test_deleting_a_container_deletes_neither_its_members_nor_other_containers(repo: ContentRepository) -> None:
    build_course(repo)
    content.delete_entity(repo, "u1", author=ADA)
    assert entities.get_entity(repo, "c1", state="draft").deleted is False
    assert keys_of(containers.resolve_tree(repo, "ss1", View("draft"))) == []


# -- reads ----------------------------------------------------------------------------------------


def test_where_used_lists_draft_and_live_containers_from_the_index(repo: ContentRepository) -> None:
    component(repo, "shared")
    container(repo, "u1", "unit", ["shared"])
    publish(repo, "u1")
    v1 = entities.get_entity(repo, "shared", state="draft").commit
    container(repo, "u2", "unit", [{"key": "shared", "pin": v1}])
    used = [(u.container, u.view, u.pinned) for u in containers.where_used(repo, "shared")]
    assert used == [("u1", "draft", False), ("u1", "live", False), ("u2", "draft", True)]


def test_the_live_tree_as_of_a_past_moment(repo: ContentRepository) -> None:
    import time
    from datetime import UTC, datetime

    component(repo, "a", "first")
    container(repo, "u1", "unit", ["a"])
    publish(repo, "u1")
    time.sleep(1.1)
    then = datetime.now(UTC)
    time.sleep(1.1)
    content.patch_draft(repo, "a", {"title": "second"}, author=ADA)
    publish(repo, "u1")
    assert [m.title for m in containers.tree_as_of(repo, "u1", then).members or []] == ["first"]
    assert titles(repo, "u1", "published") == ["second"]


def test_a_live_tree_leaves_out_members_taken_down_and_marks_withdrawn_ones(repo: ContentRepository) -> None:
    """Issue 20: a component unpublished as gone was listed in its unit's live tree as an
    ordinary member. The tree follows expanded links' rule: what is gone, redirected or
    vanished is left out, a withdrawn member stays with its notice, and the draft tree marks
    each member with how it was taken down."""

    for key in ("a", "b", "c", "d"):
        component(repo, key)
    v1 = entities.get_entity(repo, "d", state="draft").commit
    container(repo, "u1", "unit", ["a", "b", "c", {"key": "d", "pin": v1}])
    publish(repo, "u1")
    content.unpublish(repo, "a", "gone", author=GRACE, explanation="Retired")
    content.unpublish(repo, "b", "withdrawn", author=GRACE, explanation="Out of date")
    content.unpublish(repo, "c", "vanish", author=GRACE)

    live = containers.resolve_tree(repo, "u1", View("published"))
    assert keys_of(live) == ["b", "d"]
    assert [(m.key, m.unpublishing and m.unpublishing.type) for m in live.members or []] == [
        ("b", "withdrawn"),
        ("d", None),  # pinned to a version that was never taken down
    ]
    assert live.members and live.members[0].unpublishing.explanation == "Out of date"  # type: ignore[union-attr]
    draft = containers.resolve_tree(repo, "u1", View("draft"))
    assert [(m.key, m.unpublishing and m.unpublishing.type) for m in draft.members or []] == [
        ("a", "gone"),
        ("b", "withdrawn"),
        ("c", "vanish"),
        ("d", None),
    ]


def test_a_publish_of_an_old_container_version_that_would_close_a_cycle_is_refused(repo: ContentRepository) -> None:
    container(repo, "b", "container", [])
    container(repo, "a", "container", ["b"])  # a v1 holds b
    container(repo, "a", "container", [])  # a v2 holds nothing
    container(repo, "b", "container", ["a"])  # fine in draft: a's draft holds nothing
    with pytest.raises(Conflict, match="cycle"):
        content.publish(repo, [PublishTarget("a", version=1)], author=ADA)


# -- pruning --------------------------------------------------------------------------------------


def test_prune_removes_only_deleted_never_published_unnamed_entities_top_down(repo: ContentRepository) -> None:
    from gitstore.upkeep.pruning import prune

    for key in ("kept-live", "only-in-draft-box", "pinned", "abandoned"):
        component(repo, key)
    container(repo, "draft-box", "container", ["only-in-draft-box"])
    pin = entities.get_entity(repo, "pinned", state="draft").commit
    container(repo, "holder", "container", [{"key": "pinned", "pin": pin}, "kept-live"])
    publish(repo, "holder")  # kept-live and pinned are live now
    content.patch_draft(repo, "holder", {"members": []}, author=ADA)
    content.delete_entity(repo, "kept-live", author=ADA)
    content.delete_entity(repo, "abandoned", author=ADA)
    content.delete_entity(repo, "draft-box", author=ADA)  # never published, and now deleted
    content.delete_entity(repo, "only-in-draft-box", author=ADA)
    latest = {k: entities.get_entity(repo, k, state="draft").commit for k in ("holder", "pinned")}

    dry = prune(repo, dry_run=True, grace_seconds=0)
    assert dry.pruned_entities == ["abandoned", "draft-box", "only-in-draft-box"]
    assert git(repo.path, "for-each-ref", "refs/drafts/abandoned") != ""  # a dry run writes nothing

    report = prune(repo, grace_seconds=0)
    assert report.pruned_entities == dry.pruned_entities
    assert report.unreachable_objects > 0  # the pruned branches' commits
    refs = git(repo.path, "for-each-ref", "--format=%(refname)", "refs/drafts/").split()
    assert refs == ["refs/drafts/holder", "refs/drafts/kept-live", "refs/drafts/pinned"]
    # what is pinned, published or latest is still there, readable
    assert entities.get_entity(repo, "holder", version=1).members == (Member("pinned", pin), Member("kept-live"))
    assert entities.get_entity(repo, "pinned", commit=pin).title == "pinned"
    assert {k: entities.get_entity(repo, k, state="draft").commit for k in latest} == latest
    assert entities.get_entity(repo, "kept-live").title == "kept-live"  # live until the delete is published
    assert repo.index.draft_commit_of("abandoned") is None
    fsck_strict(repo.path)
    assert prune(repo, grace_seconds=0).pruned_entities == []


def test_pruning_keeps_the_activity_and_retires_the_key(repo: ContentRepository) -> None:
    """Issue 20: pruning dropped the pruned entities' rows from the activity log, and the key
    could be created again from version 1, so links still naming it reached the newcomer and
    its old activity read as the newcomer's. The activity stays (in git too, so a reindex
    keeps it) and the key is refused for good."""
    from gitstore.errors import KeyRetired
    from gitstore.history import api as history
    from gitstore.upkeep.pruning import prune
    from gitstore.upkeep.repair import reindex

    def activity(key: str) -> list[tuple[int, str, str]]:
        return [(c.version, c.action, c.author.email) for c in history.list_activity(repo, key=key).items]

    component(repo, "scratch")
    content.patch_draft(repo, "scratch", {"title": "scratch 2"}, author=GRACE)
    component(repo, "page")
    content.patch_draft(repo, "page", {"links": {"related": ["scratch"]}}, author=ADA)
    content.delete_entity(repo, "scratch", author=ADA)
    before = activity("scratch")
    assert [v for v, _, _ in before] == [3, 2, 1]

    assert prune(repo, grace_seconds=0).pruned_entities == ["scratch"]
    assert activity("scratch") == before
    assert "scratch" in git(repo.path, "show", "refs/meta/pruned:pruned.json")
    reindex(repo)
    assert activity("scratch") == before

    draft_before = git(repo.path, "rev-parse", DRAFT)
    with pytest.raises(KeyRetired):
        component(repo, "scratch")
    assert git(repo.path, "for-each-ref", "refs/drafts/scratch") == ""
    assert git(repo.path, "rev-parse", DRAFT) == draft_before
    assert activity("scratch") == before
    assert prune(repo, grace_seconds=0).pruned_entities == []
    fsck_strict(repo.path)


def test_prune_keeps_a_deleted_member_that_an_old_version_still_names(repo: ContentRepository) -> None:
    from gitstore.upkeep.pruning import prune

    component(repo, "c")
    container(repo, "u", "unit", ["c"])
    content.delete_entity(repo, "c", author=ADA)  # u's version 2 drops it, version 1 still names it
    report = prune(repo, dry_run=True, grace_seconds=0)
    assert report.pruned_entities == [] and report.kept == {"c": "named by a manifest of 'u'"}

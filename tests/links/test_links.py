"""Seeds 001 and 002 beyond drafts: links, expansion, dependents, translations, uniqueness and
unpublishing, the way GOV.UK's Publishing API behaves, on git."""

from __future__ import annotations

from typing import Any

import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.errors import (
    BasePathTaken,
    DraftPending,
    EntityNotFound,
    Gone,
    InvalidDocument,
    InvalidInput,
    Redirected,
    StaleVersion,
    TranslationTaken,
)
from gitstore.links import api as links
from gitstore.links.expansion import dependents_of_each
from gitstore.publishing.api import PublishTarget
from gitstore.publishing.unpublishing import serve
from tests.conftest import ADA, GRACE, fsck_strict, git


def page(repo: ContentRepository, key: str, *, path: str | None = None, **extra: Any) -> str:
    doc = {"type": extra.pop("type", "guide"), "title": extra.pop("title", key.title()), "base_path": path, **extra}
    return content.put_draft(repo, key, doc, author=ADA).entity.commit


def publish(repo: ContentRepository, *keys: str) -> links.PublishRecord:  # type: ignore[name-defined]
    return content.publish(repo, [PublishTarget(k) for k in keys], author=GRACE)


def shown(expanded: links.ExpandedLinks, link_type: str) -> list[str]:
    return [s.key for s in expanded.links.get(link_type, [])]


# -- links ------------------------------------------------------------------------------------


def test_links_to_unknown_keys_are_refused_with_every_problem_and_nothing_written(repo: ContentRepository) -> None:
    page(repo, "tax")
    before = git(repo.path, "for-each-ref")
    with pytest.raises(InvalidDocument) as caught:
        page(repo, "guide", links={"related": ["tax", "nope", "nope-2"], "children": ["tax"]})
    locs = [e["loc"] for e in caught.value.extra["errors"]]
    assert ["links", "related", 1] in locs and ["links", "related", 2] in locs
    assert ["links", "children"] in locs  # computed from parent links, never written
    assert git(repo.path, "for-each-ref") == before


def test_deleting_a_target_does_not_block_edits_or_discards_of_pages_that_link_to_it(
    repo: ContentRepository,
) -> None:
    page(repo, "tax")
    page(repo, "guide", links={"related": ["tax"]})
    publish(repo, "tax", "guide")
    content.delete_entity(repo, "tax", author=ADA)
    content.patch_draft(repo, "guide", {"title": "Guide 2"}, author=ADA)
    content.discard_draft(repo, "guide", author=ADA)
    assert shown(links.expanded_links(repo, "guide", state="draft"), "related") == []


def test_a_new_link_to_a_deleted_target_is_refused_and_nothing_written(repo: ContentRepository) -> None:
    page(repo, "tax")
    page(repo, "vat")
    page(repo, "guide", links={"related": ["tax"]})
    publish(repo, "tax", "vat", "guide")
    content.delete_entity(repo, "tax", author=ADA)
    content.delete_entity(repo, "vat", author=ADA)
    before = git(repo.path, "for-each-ref")
    with pytest.raises(InvalidDocument) as caught:
        page(repo, "other", links={"related": ["tax"]})
    assert caught.value.extra["errors"] == [{"loc": ["links", "related", 0], "msg": "'tax' is deleted"}]
    with pytest.raises(InvalidDocument) as caught:  # the page keeps its link, but gains no new one
        content.patch_draft(repo, "guide", {"links": {"related": ["tax", "vat"]}}, author=ADA)
    assert caught.value.extra["errors"] == [{"loc": ["links", "related", 1], "msg": "'vat' is deleted"}]
    assert git(repo.path, "for-each-ref") == before
    content.patch_draft(repo, "guide", {"title": "Guide 2", "links": {"related": ["tax"]}}, author=ADA)


def test_links_are_versioned_with_the_draft_and_go_live_with_it(repo: ContentRepository) -> None:
    page(repo, "tax")
    page(repo, "vat")
    page(repo, "guide", links={"related": ["tax"]})
    publish(repo, "tax", "vat", "guide")
    content.patch_draft(repo, "guide", {"links": {"related": ["vat", "tax"]}}, author=ADA)

    assert shown(links.expanded_links(repo, "guide", state="draft"), "related") == ["vat", "tax"]
    assert shown(links.expanded_links(repo, "guide", state="published"), "related") == ["tax"]
    publish(repo, "guide")
    assert shown(links.expanded_links(repo, "guide", state="published"), "related") == ["vat", "tax"]


def test_expansion_in_the_live_view_skips_what_is_not_live(repo: ContentRepository) -> None:
    page(repo, "live-one", path="/live-one")
    page(repo, "draft-only")
    page(repo, "guide", links={"related": ["live-one", "draft-only"]})
    publish(repo, "live-one", "guide")

    live = links.expanded_links(repo, "guide", state="published")
    draft = links.expanded_links(repo, "guide", state="draft")
    assert shown(live, "related") == ["live-one"]
    assert shown(draft, "related") == ["live-one", "draft-only"]
    [summary] = live.links["related"]
    assert (summary.title, summary.base_path, summary.locale, summary.type) == ("Live-One", "/live-one", "en", "guide")

    content.delete_entity(repo, "live-one", author=ADA)
    assert shown(links.expanded_links(repo, "guide", state="draft"), "related") == ["draft-only"]
    assert shown(links.expanded_links(repo, "guide", state="published"), "related") == ["live-one"]
    publish(repo, "live-one")  # the delete goes live
    assert shown(links.expanded_links(repo, "guide", state="published"), "related") == []


def test_reverse_links_and_breadcrumbs_stop_on_a_cycle(repo: ContentRepository) -> None:
    page(repo, "root")
    page(repo, "a", links={"parent": ["root"]})
    page(repo, "b", links={"parent": ["a"]})
    page(repo, "c", links={"parent": ["b"], "related": ["a"]})
    # root's parent is c: a cycle root -> c -> b -> a -> root
    content.patch_draft(repo, "root", {"links": {"parent": ["c"]}}, author=ADA)

    c = links.expanded_links(repo, "c", state="draft")
    assert [s.key for s in c.breadcrumbs] == ["b", "a", "root"]  # stops before coming back to c
    a = links.expanded_links(repo, "a", state="draft")
    assert shown(a, "children") == ["b"]
    assert shown(a, "related_from") == ["c"]
    assert [s.key for s in a.breadcrumbs] == ["root", "c", "b"]


def test_link_types_can_be_given_a_reverse(repo: ContentRepository) -> None:
    content.set_link_type(repo, "organisations", reverse="organisation_pages", breadcrumbs=False, author=ADA)
    page(repo, "hmrc", type="organisation")
    page(repo, "vat", links={"organisations": ["hmrc"]})
    assert shown(links.expanded_links(repo, "hmrc", state="draft"), "organisation_pages") == ["vat"]
    with pytest.raises(InvalidInput):
        content.set_link_type(repo, "mentions", reverse="children", breadcrumbs=False, author=ADA)
    assert git(repo.path, "log", "--format=%s", "refs/meta/link-types").splitlines() == [
        "Link type organisations: reverse organisation_pages"
    ]


# -- dependents -------------------------------------------------------------------------------


def test_dependents_cover_links_reverse_links_breadcrumbs_containers_and_translations(repo: ContentRepository) -> None:
    page(repo, "root")
    page(repo, "topic", links={"parent": ["root"]})
    page(repo, "leaf", links={"parent": ["topic"]})
    page(repo, "fan", links={"related": ["topic"]})
    page(repo, "topic-cy", locale="cy", content_id="topic")
    page(repo, "other")
    content.put_draft(repo, "unit", {"type": "container", "title": "Unit", "members": [{"key": "topic"}]}, author=ADA)

    found = links.dependents(repo, ["topic"], state="draft")
    # root shows topic as a child; leaf links to it and has it in its breadcrumbs; fan links
    # to it; the unit holds it; topic-cy is its translation. `other` has nothing to do with it.
    assert found == ["fan", "leaf", "root", "topic-cy", "unit"]
    assert links.dependents(repo, ["root"], state="draft") == ["leaf", "topic"]  # breadcrumbs run through root
    assert links.dependents(repo, ["topic"], state="published") == []  # nothing is live yet
    # What a publish records of each entity it moves is that entity's own answer.
    keys = ["root", "topic", "leaf", "fan", "topic-cy", "other", "unit"]
    each = dependents_of_each(repo, keys, state="draft")
    assert each == [links.dependents(repo, [k], state="draft") for k in keys]
    publish(repo, *keys)
    each = dependents_of_each(repo, keys, state="published")
    assert each == [links.dependents(repo, [k], state="published") for k in keys] and each[1] == found


def test_dependents_change_after_an_edit_and_publishing_reports_them(repo: ContentRepository) -> None:
    page(repo, "hub")
    page(repo, "spoke", links={"related": ["hub"]})
    page(repo, "elsewhere")
    publish(repo, "hub", "elsewhere", "spoke")
    assert links.dependents(repo, ["spoke"], state="published") == ["hub"]

    content.patch_draft(repo, "spoke", {"links": {"related": ["elsewhere"]}}, author=ADA)
    assert links.dependents(repo, ["spoke"], state="draft") == ["elsewhere"]
    record = publish(repo, "spoke")
    # hub lost spoke from its related_from (an orphan); elsewhere gained it
    assert record.dependents == ("elsewhere", "hub")


# -- translations ------------------------------------------------------------------------------


def test_translations_version_lock_and_publish_on_their_own(repo: ContentRepository) -> None:
    en = page(repo, "guide", path="/guide")
    cy = page(repo, "guide-cy", path="/guide.cy", locale="cy", content_id="guide")
    publish(repo, "guide")

    # Welsh has its own lock: a stale English ETag does not stop it, and vice versa.
    content.patch_draft(repo, "guide", {"title": "Guide v2"}, author=ADA, expected=entities.IfMatch(en))
    content.patch_draft(repo, "guide-cy", {"title": "Canllaw"}, author=GRACE, expected=entities.IfMatch(cy))
    with pytest.raises(StaleVersion):
        content.patch_draft(repo, "guide", {"title": "Guide v3"}, author=ADA, expected=entities.IfMatch(en))

    docs = links.translations(repo, "guide", include_drafts=True)
    assert [(t.key, t.locale, t.draft, t.live) for t in docs] == [
        ("guide-cy", "cy", True, False),
        ("guide", "en", True, True),
    ]
    assert [t.key for t in links.translations(repo, "guide", include_drafts=False)] == ["guide"]
    assert entities.get_entity(repo, "guide", state="published").title == "Guide"  # v2 is a draft

    with pytest.raises(TranslationTaken):
        page(repo, "guide-cy-2", locale="cy", content_id="guide")


def test_expanded_links_prefer_the_readers_locale_and_fall_back_to_the_documents_default(
    repo: ContentRepository,
) -> None:
    page(repo, "tax", title="Tax")
    page(repo, "tax-cy", title="Treth", locale="cy", content_id="tax")
    page(repo, "vat", title="VAT")
    page(repo, "guide", links={"related": ["tax", "vat"]})
    page(repo, "guide-cy", locale="cy", content_id="guide", links={"related": ["tax", "vat"]})

    welsh = links.expanded_links(repo, "guide-cy", state="draft")
    assert [(s.key, s.title) for s in welsh.links["related"]] == [("tax-cy", "Treth"), ("vat", "VAT")]
    english = links.expanded_links(repo, "guide-cy", state="draft", locale="en")
    assert [s.key for s in english.links["related"]] == ["tax", "vat"]
    assert [s.locale for s in welsh.available_translations] == ["en", "cy"]


# -- uniqueness --------------------------------------------------------------------------------


def test_a_draft_may_sit_at_a_live_path_with_a_warning_but_publishing_it_is_refused(repo: ContentRepository) -> None:
    page(repo, "old", path="/vat")
    publish(repo, "old")
    content.patch_draft(repo, "old", {"base_path": "/vat-old"}, author=ADA)  # old's draft moves away

    result = content.put_draft(repo, "new", {"type": "guide", "title": "New", "base_path": "/vat"}, author=ADA)
    assert result.changed and "'old'" in result.warnings[0]
    with pytest.raises(BasePathTaken) as caught:
        publish(repo, "new")
    assert caught.value.extra["holder"] == "old"
    assert entities.get_entity(repo, "old", state="published").base_path == "/vat"

    publish(repo, "old", "new")  # old leaves the path in the same publish: allowed
    assert entities.get_entity(repo, "new", state="published").base_path == "/vat"
    fsck_strict(repo.path)


def test_content_takes_a_placeholders_path_in_drafts_then_live(repo: ContentRepository) -> None:
    page(repo, "coming", path="/budget", type="redirect")
    publish(repo, "coming")

    result = content.put_draft(repo, "budget", {"type": "guide", "title": "Budget", "base_path": "/budget"}, author=ADA)
    assert "placeholder 'coming'" in result.warnings[0]
    # One atomic batch: the new draft and the placeholder's delete.
    head = git(repo.path, "log", "-1", "--format=%B", "draft")
    assert "Gitstore-Batch: budget " in head and "Gitstore-Batch: coming " in head
    assert entities.get_entity(repo, "coming", state="published").base_path == "/budget"  # still live

    record = publish(repo, "budget")
    assert {item.key: item.deleted for item in record.items} == {"budget": False, "coming": True}
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "coming", state="published")
    fsck_strict(repo.path)


def test_a_placeholder_with_work_in_progress_is_not_thrown_away(repo: ContentRepository) -> None:
    page(repo, "coming", path="/budget", type="gone")
    publish(repo, "coming")
    content.patch_draft(repo, "coming", {"base_path": "/budget-2027", "type": "guide"}, author=ADA)
    page(repo, "budget", path="/budget")
    with pytest.raises(BasePathTaken) as caught:
        publish(repo, "budget")
    assert caught.value.extra["holder"] == "coming"


def test_an_unpublished_page_is_a_placeholder_for_its_path(repo: ContentRepository) -> None:
    page(repo, "old", path="/benefits")
    publish(repo, "old")
    content.unpublish(repo, "old", "gone", author=GRACE)
    content.patch_draft(repo, "old", {"base_path": "/benefits-old"}, author=ADA)  # draft moves away
    content.discard_draft(repo, "old", author=ADA)  # ... and back: the draft equals what is live
    content.delete_entity(repo, "old", author=ADA)
    page(repo, "new", path="/benefits")
    record = publish(repo, "new")
    assert sorted(item.key for item in record.items) == ["new", "old"]


def test_base_path_races_have_one_winner(repo: ContentRepository) -> None:
    import threading

    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def claim(i: int) -> None:
        barrier.wait()
        try:
            page(repo, f"claimant-{i}", path="/contested")
            outcomes.append("won")
        except BasePathTaken:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["won"]


# -- unpublishing ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gone", "redirect", "vanish", "withdrawn"])
def test_unpublish_each_type_then_republish(repo: ContentRepository, kind: str) -> None:
    page(repo, "hub")
    page(repo, "guide", path="/guide")
    page(repo, "fan", links={"related": ["guide"]})
    publish(repo, "hub", "guide", "fan")

    extra = {"withdrawn": {"explanation": "Replaced by new rules"}, "redirect": {"alternative_path": "/hub"}}
    record = content.unpublish(repo, "guide", kind, author=GRACE, **extra.get(kind, {}))
    assert [(i.key, i.deleted) for i in record.items] == [("guide", False)]
    assert record.dependents == ("fan",)

    live = entities.get_entity(repo, "guide", state="published")
    assert live.unpublishing is not None and live.unpublishing.type == kind
    if kind == "withdrawn":
        served = serve(live)
        assert served.unpublishing.explanation == "Replaced by new rules"  # type: ignore[union-attr]
        fan = links.expanded_links(repo, "fan", state="published")
        assert [(s.key, s.withdrawn) for s in fan.links["related"]] == [("guide", True)]
    else:
        with pytest.raises(Redirected if kind == "redirect" else Gone) as caught:
            serve(live)
        if kind == "redirect":
            assert caught.value.extra["alternative_path"] == "/hub"
        if kind == "vanish":
            assert caught.value.extra == {"explanation": None, "alternative_path": None}
        assert "related" not in links.expanded_links(repo, "fan", state="published").links

    log = git(repo.path, "log", "--format=%s", "refs/drafts/guide").splitlines()
    assert log[0] == f"Unpublish guide ({kind})"
    # issue 20: the publish log says it was an unpublish (it used to say "Publish guide version 3")
    assert git(repo.path, "log", "-1", "--format=%s", "main") == f"Unpublish guide ({kind})\n"

    content.republish(repo, "guide", author=GRACE)
    live = entities.get_entity(repo, "guide", state="published")
    assert live.unpublishing is None and serve(live) == live
    assert git(repo.path, "log", "-1", "--format=%s", "refs/drafts/guide") == "Republish guide\n"
    assert git(repo.path, "log", "-1", "--format=%s", "main") == "Republish guide\n"
    fsck_strict(repo.path)


def test_unpublishing_and_republishing_keep_the_user_facing_version(repo: ContentRepository) -> None:
    """Seed 001: the user-facing version stays the same as an item moves between states; only
    new content work raises it. A withdraw and a republish are state changes, not new work."""
    page(repo, "guide", path="/guide")
    publish(repo, "guide")

    def editions() -> tuple[int, int]:
        draft = entities.get_entity(repo, "guide", state="draft")
        live = entities.get_entity(repo, "guide", state="published")
        return draft.edition, live.edition

    assert editions() == (1, 1)
    record = content.unpublish(repo, "guide", "withdrawn", author=GRACE, explanation="Out of date")
    assert [i.edition for i in record.items] == [1]
    assert editions() == (1, 1)
    content.republish(repo, "guide", author=GRACE)
    assert editions() == (1, 1)
    content.unpublish(repo, "guide", "gone", author=GRACE)
    content.patch_draft(repo, "guide", {"title": "Rewritten"}, author=ADA)  # new work: a new edition
    assert editions() == (2, 1)
    publish(repo, "guide")
    assert editions() == (2, 2)


def test_unpublish_refuses_bad_requests_and_pending_drafts(repo: ContentRepository) -> None:
    page(repo, "guide", path="/guide")
    with pytest.raises(EntityNotFound):
        content.unpublish(repo, "guide", "gone", author=GRACE)  # never live
    publish(repo, "guide")
    before = git(repo.path, "for-each-ref")
    with pytest.raises(InvalidInput) as caught:
        content.unpublish(repo, "guide", "withdrawn", author=GRACE, alternative_path="not a path")
    assert {e["loc"][0] for e in caught.value.extra["errors"]} == {"explanation", "alternative_path"}
    with pytest.raises(InvalidInput):
        content.unpublish(repo, "guide", "redirect", author=GRACE, alternative_path="/guide")  # to itself
    with pytest.raises(InvalidInput) as caught:
        content.unpublish(repo, "guide", "vanish", author=GRACE, explanation="a vanish says nothing")
    assert caught.value.extra["errors"][0]["loc"] == ["type"]
    assert git(repo.path, "for-each-ref") == before

    content.patch_draft(repo, "guide", {"title": "Work in progress"}, author=ADA)
    with pytest.raises(DraftPending):
        content.unpublish(repo, "guide", "gone", author=GRACE)
    content.unpublish(repo, "guide", "gone", author=GRACE, discard_draft=True)
    assert entities.get_entity(repo, "guide", state="draft").title == "Guide"
    versions = [v.action for v in entities.list_versions(repo, "guide").items]
    assert versions[:2] == ["unpublish", "update"]  # the discarded work stays in history


def test_the_event_feed_reads_the_same_history_after_pruning_and_a_reindex(repo: ContentRepository) -> None:
    from gitstore.events import read_events
    from gitstore.upkeep.pruning import prune
    from gitstore.upkeep.repair import reindex

    page(repo, "keep")
    page(repo, "abandoned")
    content.delete_entity(repo, "abandoned", author=ADA)
    before = [(e.id, e.key, e.commit) for e in read_events(repo, limit=100).items]
    assert prune(repo, grace_seconds=0).pruned_entities == ["abandoned"]
    reindex(repo)  # the feed is read again from git, whose `draft` still names pruned commits
    assert [(e.id, e.key, e.commit) for e in read_events(repo, limit=100).items] == before


def test_publishing_a_new_draft_reverses_an_unpublishing(repo: ContentRepository) -> None:
    page(repo, "guide", path="/guide")
    publish(repo, "guide")
    content.unpublish(repo, "guide", "gone", author=GRACE)
    content.patch_draft(repo, "guide", {"title": "Back again"}, author=ADA)
    assert entities.get_entity(repo, "guide", state="draft").unpublishing is None
    publish(repo, "guide")
    live = entities.get_entity(repo, "guide", state="published")
    assert (live.title, live.unpublishing) == ("Back again", None)


def test_gone_content_is_not_served_anywhere_in_the_live_view(repo: ContentRepository) -> None:
    from gitstore.index.api import ListFilter

    page(repo, "tax", path="/tax")
    page(repo, "tax-cy", path="/tax.cy", locale="cy", content_id="tax")
    page(repo, "guide-cy", locale="cy", links={"related": ["tax-cy"]})
    publish(repo, "tax", "tax-cy", "guide-cy")
    content.unpublish(repo, "tax-cy", "gone", author=GRACE)

    # A Welsh reader falls back to the document's default rather than losing the link.
    [shown_link] = links.expanded_links(repo, "guide-cy", state="published").links["related"]
    assert (shown_link.key, shown_link.locale) == ("tax", "en")
    with pytest.raises(Gone):
        links.expanded_links(repo, "tax-cy", state="published")
    listed = entities.list_entities(repo, ListFilter(state="published")).items
    assert sorted(e.key for e in listed) == ["guide-cy", "tax"]
    assert [t.key for t in links.translations(repo, "tax", include_drafts=False)] == ["tax"]

    content.unpublish(repo, "guide-cy", "vanish", author=GRACE)
    listed = entities.list_entities(repo, ListFilter(state="published")).items
    assert [e.key for e in listed] == ["tax"]
    with pytest.raises(Gone) as caught:
        links.expanded_links(repo, "guide-cy", state="published")
    assert "explanation" not in caught.value.detail

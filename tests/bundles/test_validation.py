"""An import is checked whole: every problem reported, and one bad entity refuses everything."""

from __future__ import annotations

import pytest

from gitstore import ContentRepository, content
from gitstore.bundles.format import NDJSON
from gitstore.entities import api as entities
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.errors import EntityNotFound, InvalidDocument, StaleVersion
from gitstore.repository import DRAFT
from gitstore.storage.api import entity_path, read_ref
from tests.bundles.conftest import export, load, ndjson, tar_gz
from tests.conftest import ADA, disk_state


def entity(key: str, body: dict) -> dict[str, bytes]:  # type: ignore[type-arg]
    """The files of one entity in an archive bundle (entity.json as a client would write it)."""
    import orjson

    return {f"{entity_path(key)}/entity.json": orjson.dumps({"key": key, "deleted": False, **body})}


def doc(key: str, **document: object) -> dict:  # type: ignore[type-arg]
    return {"key": key, "document": {"type": "component.html", "title": key.title(), **document}}


BROKEN = [
    doc("fine"),
    {"key": "untitled", "document": {"type": "component.html"}},
    doc("clash-a", base_path="/same"),
    doc("clash-b", base_path="/same"),
    {"key": "unit-1", "document": {"type": "unit", "title": "U", "members": [{"key": "ghost"}, {"key": "section"}]}},
    {"key": "section", "document": {"type": "section", "title": "S", "members": []}},
    {"key": "pinned", "document": {"type": "unit", "title": "P", "members": [{"key": "fine", "pin": "a" * 40}]}},
    {"key": "loop-a", "document": {"type": "container", "title": "A", "members": [{"key": "loop-b"}]}},
    {"key": "loop-b", "document": {"type": "container", "title": "B", "members": [{"key": "loop-a"}]}},
    doc("linker", links={"children": ["fine"], "related": ["nowhere"]}),
]


def test_a_dry_run_reports_every_problem_with_where_and_writes_nothing(repo: ContentRepository) -> None:
    content.put_draft(repo, "held", {"type": "page", "title": "Held", "base_path": "/held"}, author=ADA)
    bundle = ndjson([*BROKEN, doc("taker", base_path="/held")]) + b"not json\n"
    bundle += b'{"key": "twice", "key": "twice", "document": {}}\n'
    bundle += b'{"key": "big", "document": {"type": "page", "title": "B", "fields": {"n": 18446744073709551616}}}\n'
    before = disk_state(repo.path)

    report = load(repo, bundle, NDJSON, dry_run=True)

    found = {(p.entry, p.key, p.loc[:3], p.msg.split(":")[0]) for p in report.problems}
    assert ("line 2", "untitled", ("document", "title"), "Field required") in found
    assert ("line 4", "clash-b", ("base_path",), "'/same' is also the base_path of 'clash-a'") in found
    assert any(e == "line 5" and loc == ("members", 0, "key") and "'ghost'" in m for e, _, loc, m in found)
    assert any(e == "line 5" and loc == ("members", 1) and "a unit holds component" in m for e, _, loc, m in found)
    assert any(e == "line 7" and loc == ("members", 0, "pin") for e, _, loc, _ in found)
    assert any(k in ("loop-a", "loop-b") and m == "a cycle" for _, k, _, m in found)
    assert any(e == "line 10" and loc == ("links", "children") for e, _, loc, _ in found)
    assert ("line 11", "taker", ("base_path",), "'/held' is held by the draft of 'held'") in found
    assert any(e == "line 12" and "not valid JSON" in m for e, _, _, m in found)
    messages = {p.entry: p.msg for p in report.problems}
    assert "duplicate key 'key'" in messages["line 13"] and "does not fit in 64 bits" in messages["line 14"]
    assert len(report.problems) == 11
    # a link to an entity that is nowhere is allowed, with a warning
    assert [(w.key, w.loc) for w in report.warnings] == [("linker", ("links", "related", 0))]
    assert report.created == [] and disk_state(repo.path) == before


def test_one_bad_entity_refuses_the_whole_import(repo: ContentRepository) -> None:
    bundle = tar_gz(
        {
            **entity("good", {"type": "page", "title": "Good"}),
            **entity("also-good", {"type": "page", "title": "Also good", "links": {"related": ["good"]}}),
            **entity("bad", {"type": "page", "title": "Bad", "fields": {"x": 1}, "colour": "red"}),
        }
    )
    before = disk_state(repo.path)
    with pytest.raises(InvalidDocument) as refused:
        load(repo, bundle)
    assert refused.value.extra["errors"] == [
        {"loc": [f"{entity_path('bad')}/entity.json", "colour"], "key": "bad", "msg": "not a field of entity.json"}
    ]
    assert disk_state(repo.path) == before
    with pytest.raises(EntityNotFound):
        entities.get_entity(repo, "good", state="draft")


def test_entities_may_link_to_hold_and_pin_entities_arriving_with_them(repo: ContentRepository) -> None:
    bundle = ndjson(
        [
            {"key": "unit", "document": {"type": "unit", "title": "U", "members": [{"key": "a"}, {"key": "b"}]}},
            doc("a", links={"related": ["b"]}),
            doc("b", links={"parent": ["unit"]}),
        ]
    )
    report = load(repo, bundle, NDJSON)
    assert report.created == ["a", "b", "unit"] and report.warnings == []
    unit = entities.get_entity(repo, "unit", state="draft")
    assert [m.key for m in unit.members] == ["a", "b"]


def test_an_import_is_an_upsert_and_a_dry_run_says_what_a_real_one_does(repo: ContentRepository) -> None:
    content.put_draft(repo, "kept", {"type": "page", "title": "Kept"}, author=ADA)
    content.put_draft(repo, "same", {"type": "component.html", "title": "Same"}, author=ADA)
    content.put_draft(repo, "edited", {"type": "component.html", "title": "Before"}, author=ADA)
    bundle = ndjson([doc("same"), doc("edited", fields={"html": "after\n"}), doc("new")])

    dry = load(repo, bundle, NDJSON, dry_run=True)
    real = load(repo, bundle, NDJSON)

    for report in (dry, real):
        assert (report.created, report.changed, report.unchanged) == (["new"], ["edited"], ["same"])
    assert entities.get_entity(repo, "kept", state="draft").title == "Kept"  # not in the bundle: left alone
    assert entities.get_entity(repo, "edited", state="draft").fields == {"html": "after\n"}


def test_an_import_based_on_a_stale_draft_head_is_refused(repo: ContentRepository) -> None:
    content.put_draft(repo, "page", {"type": "page", "title": "Page"}, author=ADA)
    seen = str(folded_draft_head(repo))
    bundle = export(repo)
    content.put_draft(repo, "page", {"type": "page", "title": "Someone else's edit"}, author=ADA)
    before = disk_state(repo.path)
    for dry_run in (True, False):
        with pytest.raises(StaleVersion) as stale:
            load(repo, bundle, expected_draft_head=seen, dry_run=dry_run)
        assert stale.value.extra["current"] == str(read_ref(repo.storage.git, DRAFT))
    assert disk_state(repo.path) == before
    assert load(repo, bundle, expected_draft_head=stale.value.extra["current"]).changed == ["page"]

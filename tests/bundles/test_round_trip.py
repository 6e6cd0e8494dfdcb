"""Export -> import into an empty repository reproduces identical content, pins included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from gitstore import ContentRepository, Store, content
from gitstore.bundles.format import NDJSON, TAR_GZ
from gitstore.entities import api as entities
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.publishing.api import PublishTarget
from gitstore.repository import DRAFT
from gitstore.samples import load_samples
from gitstore.storage.api import entity_path, read_ref
from tests.bundles.conftest import FORMATS, SOURCE_KEYS, export, load, read_tar, tree_of
from tests.conftest import ADA, fsck_strict

ROOT = Path(__file__).resolve().parents[2]


def pinned_version(repo: ContentRepository, container: str, position: int) -> entities.Entity:
    """The version a container's draft pins at `position`."""
    member = entities.get_entity(repo, container, state="draft").members[position]
    return entities.get_entity(repo, member.key, commit=member.pin)


@pytest.mark.parametrize("media_type", FORMATS)
def test_draft_round_trip_into_an_empty_repository_is_identical(
    store: Store, source: ContentRepository, media_type: str
) -> None:
    bundle = export(source, media_type)
    target = store.create_repository("target")
    report = load(target, bundle, media_type)

    assert report.created == SOURCE_KEYS
    assert report.changed == [] and report.unchanged == []
    # unit-1 at version 1, and intro at version 1 inside it, are older versions: carried, and
    # written under their entities' current content
    assert report.pinned_versions == 2
    assert export(target, media_type) == bundle
    assert tree_of(target, "course") == tree_of(source, "course")

    old_unit = pinned_version(target, "ss-1", 0)
    assert old_unit.title == "Unit 1" and old_unit.version == 1
    assert entities.get_entity(target, "unit-1", state="draft").title == "Unit 1, revised"
    old_intro = entities.get_entity(target, "intro", commit=old_unit.members[0].pin)
    assert (old_intro.title, old_intro.fields) == ("Intro v1", {"html": "<p>one</p>\n"})
    assert entities.get_entity(target, "tax-cy", state="draft").content_id == "tax"
    fsck_strict(target.path)


def test_the_archive_is_the_draft_branch_with_pins_as_fingerprints(source: ContentRepository) -> None:
    files = read_tar(export(source))
    git = source.storage.git
    draft = git[read_ref(git, DRAFT)].tree
    leaves = {name for name in files if not name.startswith("pins/") and not name.endswith("members.json")}
    for name in leaves:
        assert draft[name].data == files[name], name
    assert {name.split("/")[1] for name in files if name.startswith("pins/")} == {"intro", "unit-1"}
    pin = orjson.loads(files[f"{entity_path('ss-1')}/members.json"])[0]["pin"]
    assert f"pins/unit-1/{pin}/members.json" in files  # the pinned version, carried by fingerprint
    assert pin != entities.get_entity(source, "ss-1", state="draft").members[0].pin  # not the commit id


def test_published_view_round_trips_and_publish_true_makes_it_live(store: Store, source: ContentRepository) -> None:
    bundle = export(source, state="published")
    target = store.create_repository("target")
    report = load(target, bundle, publish=True)

    assert report.published is not None and "course" in {item.key for item in report.published.items}
    assert export(target, state="published") == bundle
    assert entities.get_entity(target, "tax").title == "Tax"  # what was live, not the later draft
    assert entities.get_entity(target, "old-tax").withdrawn_at is not None
    assert tree_of(target, "course", "published") == tree_of(source, "course", "published")


def test_importing_an_export_into_its_own_repository_changes_nothing(source: ContentRepository) -> None:
    head = folded_draft_head(source)
    for media_type in (TAR_GZ, NDJSON):
        report = load(source, export(source, media_type), media_type)
        assert report.created == [] and report.changed == [] and report.pinned_versions == 0
        assert report.unchanged == SOURCE_KEYS
    assert read_ref(source.storage.git, DRAFT) == head


def test_as_of_exports_the_view_at_that_moment(store: Store, source: ContentRepository) -> None:
    before = export(source, state="published")
    main = source.storage.git.references["refs/heads/main"].target
    content.patch_draft(source, "money", {"title": "Money and tax"}, author=ADA)
    content.publish(source, [PublishTarget("money")], author=ADA)
    assert export(source, state="published") != before
    assert export(source, state="published", as_of=str(main)) == before
    assert export(source, state="published", as_of=datetime.now(UTC) - timedelta(days=1)) == export(
        store.create_repository("empty")
    )


def test_the_sample_repositories_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    load_samples(store, ROOT / "sample_repos")
    for name in ("demo-course", "gov-pages"):
        for state in ("draft", "published"):
            bundle = export(store.repository(name), state=state)
            target = store.create_repository(f"{name}-{state}")
            load(target, bundle, publish=state == "published")
            assert export(target, state=state) == bundle, (name, state)

"""Batches of draft changes: in order, several versions of one entity, and big batches packed."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities.api import DraftChange
from gitstore.entities.document import Member, parse_document
from gitstore.errors import BasePathTaken
from gitstore.history import api as history
from gitstore.repository import DRAFT
from gitstore.storage.api import read_ref, write_commit, write_files
from tests.conftest import ADA, disk_state, fsck_strict


def doc(title: str, **extra: object) -> tuple:  # type: ignore[type-arg]
    return parse_document({"type": "component", "title": title, **extra}), False


def test_one_batch_makes_several_versions_of_an_entity_and_a_later_change_names_them(
    repo: ContentRepository,
) -> None:
    made: dict[str, pygit2.Oid] = {}
    unit = parse_document({"type": "unit", "title": "Unit"})

    def pinning(_current: object) -> tuple:  # type: ignore[type-arg]
        return unit._replace(members=(Member("intro", str(made["old"])), Member("intro", None))), False

    changes = [
        DraftChange("intro", lambda _c: doc("Old intro"), on_commit=lambda c: made.setdefault("old", c)),
        DraftChange("intro", lambda _c: doc("New intro")),
        DraftChange("unit", pinning),
    ]
    results = content.write_drafts(repo, changes, author=ADA, summary="Import")

    assert [r.entity.key for r in results] == ["intro", "intro", "unit"]
    assert results[0].entity.title == "New intro" and results[0].created
    versions = entities.list_versions(repo, "intro").items
    assert [(v.version, v.message) for v in versions] == [(2, "Update intro: title"), (1, "Create intro")]
    assert str(made["old"]) == versions[1].commit
    assert entities.get_entity(repo, "unit", state="draft").members[0].pin == versions[1].commit
    # both versions are in the activity log, and `draft` moved once, naming the newest
    assert {c.version for c in history.list_activity(repo, key="intro").items} == {1, 2}
    head = repo.storage.git[read_ref(repo.storage.git, DRAFT)]
    assert f"Gitstore-Batch: intro {versions[0].commit}" in head.message
    assert not head.parents  # the batch is the first and only commit on `draft`


def test_a_big_batch_lands_as_one_pack_and_a_refused_one_writes_no_object(repo: ContentRepository) -> None:
    git = repo.storage.git
    objects = Path(repo.path) / "objects"
    changes = [DraftChange(f"item-{i}", lambda _c, i=i: doc(f"Item {i}", base_path=f"/items/{i}")) for i in range(100)]
    content.write_drafts(repo, changes, author=ADA, summary="Import 100 items")

    packs = list((objects / "pack").glob("pack-*.idx"))
    assert len(packs) == 1
    assert not [p for p in objects.iterdir() if len(p.name) == 2]  # no loose object at all
    assert entities.get_entity(repo, "item-42", state="draft").title == "Item 42"
    fsck_strict(repo.path)

    before = disk_state(repo.path)
    clash = [DraftChange(f"new-{i}", lambda _c, i=i: doc(f"New {i}", base_path=f"/items/{i % 2}")) for i in range(40)]
    with pytest.raises(BasePathTaken):
        content.write_drafts(repo, clash, author=ADA, summary="Clash")
    assert disk_state(repo.path) == before
    assert len(list((objects / "pack").glob("pack-*.idx"))) == 1
    assert not [p for p in objects.iterdir() if len(p.name) == 2]
    assert read_ref(git, "refs/drafts/new-0") is None


@pytest.mark.parametrize("offset", [-330, 0, 60])
def test_a_batch_writes_the_very_objects_libgit2_would(repo: ContentRepository, offset: int) -> None:
    git = repo.storage.git
    who = pygit2.Signature("Ada Løvelace", "ada@example.org", 1_700_000_000, offset)
    files = {
        "entity.json": b"{}\n",
        "fields/body.txt": "caf\u00e9\n".encode(),
        "fields-x": b"",
        "members.json": b"[]\n",
    }
    tree = write_files(git, files)
    parent = git.create_commit(None, who, who, "First\n", tree, [])
    commit = git.create_commit(None, who, who, "Zweite \u00c4nderung\n\nGitstore-Key: x\n", tree, [parent])
    with repo.storage.buffered_objects() as flush:
        buffered = repo.storage.git
        assert write_files(buffered, files) == tree
        assert write_commit(buffered, who, "Zweite \u00c4nderung\n\nGitstore-Key: x\n", tree, [parent]) == commit
        flush()
    fsck_strict(repo.path)

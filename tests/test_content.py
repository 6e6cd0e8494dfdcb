"""The one door (gitstore.content): every registered rule and publish part runs on a change
made through it, and each operation takes each lock once and rolls forward once."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gitstore import ContentRepository, Store, content
from gitstore.containers.api import Manifests, MembersAlong
from gitstore.entities import batches
from gitstore.errors import BasePathTaken, InvalidDocument
from gitstore.links.api import Dependents, Links
from gitstore.publishing import api as publishing
from gitstore.publishing.api import PublishTarget
from gitstore.publishing.slots import DraftSlots
from gitstore.storage.api import RepoLock
from tests.conftest import ADA

PAGE = {"type": "page", "title": "Page"}

# One refusal per registered rule: a rule registered without one here fails the test below.
REFUSALS: dict[type, tuple[dict[str, Any], type[Exception]]] = {
    Manifests: ({"type": "container", "title": "Box", "members": [{"key": "nowhere", "pin": None}]}, InvalidDocument),
    Links: ({"type": "page", "title": "Linking", "links": {"related": ["nowhere"]}}, InvalidDocument),
    DraftSlots: ({"type": "page", "title": "Clash", "base_path": "/taken"}, BasePathTaken),
}


def test_every_registered_rule_has_a_refusal_below() -> None:
    assert {type(rule) for rule in content.RULES} == set(REFUSALS)


@pytest.mark.parametrize("rule", list(REFUSALS), ids=lambda rule: rule.__name__)
def test_a_write_through_the_door_applies_every_registered_rule(repo: ContentRepository, rule: type) -> None:
    content.put_draft(repo, "holder", PAGE | {"base_path": "/taken"}, author=ADA)
    document, refusal = REFUSALS[rule]
    with pytest.raises(refusal):
        content.put_draft(repo, "newcomer", document, author=ADA)
    # The same content, made valid, goes through: it was the rule that refused it.
    content.put_draft(repo, "nowhere", PAGE, author=ADA)
    content.patch_draft(repo, "holder", {"base_path": "/elsewhere"}, author=ADA)
    assert content.put_draft(repo, "newcomer", document, author=ADA).created


def test_every_registered_publish_part_runs_on_a_publish(repo: ContentRepository) -> None:
    assert [type(part) for part in content.PARTS] == [MembersAlong, Dependents]
    content.put_draft(repo, "member", PAGE, author=ADA)
    content.put_draft(repo, "box", {"type": "container", "title": "Box", "members": [{"key": "member"}]}, author=ADA)
    content.put_draft(repo, "reader", PAGE | {"links": {"related": ["member"]}}, author=ADA)
    content.publish(repo, [PublishTarget("reader")], author=ADA)
    record = content.publish(repo, [PublishTarget("box")], author=ADA)
    assert [item.key for item in record.items] == ["box", "member"]  # containers bring members along
    assert record.dependents == ("reader",)  # links say who shows what moved


# -- each lock once, each roll-forward once ----------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Real acquisitions of each lock (by its file's name: drafts, publish, housekeeping), and
    real calls of each roll-forward, wherever a module looks it up."""
    seen: Counter[str] = Counter()
    acquire = RepoLock._acquire

    def acquiring(lock: RepoLock, budget: Any) -> int:
        seen[f"{lock.path.stem} lock"] += 1
        return acquire(lock, budget)

    monkeypatch.setattr(RepoLock, "_acquire", acquiring)
    for name, original in (
        ("roll_forward_drafts", batches.roll_forward_drafts),
        ("roll_forward", publishing.roll_forward),
    ):
        counting = _counting(seen, name, original)
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("gitstore") and getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counting)
    yield seen


def _counting(seen: Counter[str], name: str, original: Callable[[ContentRepository], bool]) -> Any:
    def counting(repo: ContentRepository) -> bool:
        seen[name] += 1
        return original(repo)

    return counting


DRAFT_WRITE = {"drafts lock": 1, "roll_forward_drafts": 1}
PUBLISH = {"publish lock": 1, "drafts lock": 1, "roll_forward": 1, "roll_forward_drafts": 1}


@pytest.fixture
def site(repo: ContentRepository) -> ContentRepository:
    content.put_draft(repo, "member", PAGE, author=ADA)
    content.put_draft(repo, "box", {"type": "container", "title": "Box", "members": [{"key": "member"}]}, author=ADA)
    content.put_draft(repo, "page", PAGE | {"base_path": "/page", "links": {"related": ["member"]}}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    return repo


OPERATIONS: dict[str, tuple[Callable[[ContentRepository], object], dict[str, int]]] = {
    "put_draft": (lambda r: content.put_draft(r, "new", PAGE | {"base_path": "/new"}, author=ADA), DRAFT_WRITE),
    "patch_draft": (lambda r: content.patch_draft(r, "page", {"title": "Edited"}, author=ADA), DRAFT_WRITE),
    "delete_entity, a batch": (lambda r: content.delete_entity(r, "member", author=ADA), DRAFT_WRITE),
    "delete_entity, alone": (lambda r: content.delete_entity(r, "page", author=ADA), DRAFT_WRITE),
    "write_from_base": (
        lambda r: content.write_from_base(r, "page", "1", patch={"title": "Merged"}, author=ADA),
        DRAFT_WRITE,
    ),
    "publish": (lambda r: content.publish(r, [PublishTarget("box")], author=ADA), PUBLISH),
    "publish_all_drafts": (lambda r: content.publish_all_drafts(r, author=ADA), PUBLISH),
    "unpublish": (lambda r: content.unpublish(r, "page", "gone", author=ADA), PUBLISH),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_operation_takes_each_lock_once_and_rolls_forward_once(
    site: ContentRepository, counted: Counter[str], operation: str
) -> None:
    run, expected = OPERATIONS[operation]
    content.patch_draft(site, "member", {"title": "Changed"}, author=ADA)  # something to publish
    counted.clear()
    run(site)
    assert dict(counted) == expected


def test_listeners_hear_of_a_publish_once_its_locks_are_let_go(store: Store, repo: ContentRepository) -> None:
    heard: list[tuple[str, bool, bool]] = []
    storage = repo.storage
    store.call_after_publish(
        lambda r: heard.append((r.name, storage.publish_lock.is_held_here(), storage.drafts_lock.is_held_here()))
    )
    content.put_draft(repo, "page", PAGE, author=ADA)
    assert heard == []
    content.publish(repo, [PublishTarget("page")], author=ADA)
    assert heard == [("demo", False, False)]
    content.publish(repo, [PublishTarget("page")], author=ADA)  # nothing to publish: nothing to hear
    assert len(heard) == 1
    with content.unit_of_work(repo, publish=True):  # as an import that publishes holds them
        content.patch_draft(repo, "page", {"title": "Two"}, author=ADA)
        content.publish(repo, [PublishTarget("page")], author=ADA)
        assert len(heard) == 1
    assert heard == [("demo", False, False)] * 2

"""Lock files left by a killed writer must not block an entity forever."""

from __future__ import annotations

import os
import time

import pytest

from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.errors import Busy
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict


def plant_lock(repo: ContentRepository, ref: str, age: float) -> str:
    path = repo.path / f"{ref}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("0" * 40 + "\n")
    then = time.time() - age
    os.utime(path, (then, then))
    return str(path)


def test_an_old_ref_lock_is_cleared_by_the_next_writer(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", {"type": "page", "title": "One"}, author=ADA)
    lock = plant_lock(repo, "refs/drafts/intro", age=60)
    result = content.patch_draft(repo, "intro", {"title": "Two"}, author=ADA)
    assert result.entity.version == 2 and not os.path.exists(lock)
    fsck_strict(repo.path)


def test_a_fresh_ref_lock_is_busy_not_a_crash(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", {"type": "page", "title": "One"}, author=ADA)
    plant_lock(repo, "refs/drafts/intro", age=0)
    with pytest.raises(Busy):
        content.patch_draft(repo, "intro", {"title": "Two"}, author=ADA)
    assert entities.get_entity(repo, "intro", state="draft").version == 1


def test_startup_repair_sweeps_every_lock_a_dead_writer_left(repo: ContentRepository) -> None:
    content.put_draft(repo, "intro", {"type": "page", "title": "One"}, author=ADA)
    planted = [plant_lock(repo, r, age=0) for r in ("refs/drafts/intro", "refs/heads/draft", "refs/published/intro")]
    (repo.path / "packed-refs.lock").write_text("")
    report = repair(repo)
    assert len(report.removed_locks) == 4
    assert not any(os.path.exists(p) for p in planted)
    assert content.patch_draft(repo, "intro", {"title": "Two"}, author=ADA).entity.version == 2

"""A repository's locks are taken in one order, housekeeping < publish < drafts: asking for an
earlier one while holding a later one raises at once, in every form a lock is asked for, and a
lock the thread holds already is lent rather than taken."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from itertools import combinations
from pathlib import Path

import pytest

from gitstore import ContentRepository
from gitstore.entities.work import holding
from gitstore.errors import Busy
from gitstore.storage.api import (
    LOCK_ORDER,
    GitRepository,
    LockBudget,
    LockName,
    in_order,
    in_order_if_free,
    init_bare,
    repo_lock,
)
from tests.conftest import held_flock
from tests.storage.test_lock_budget import outcome_of

PAIRS = list(combinations(LOCK_ORDER, 2))  # (earlier, later)

#: Every way a lock is asked for, as a context manager on (storage, name).
FORMS: dict[str, Callable[[GitRepository, LockName], AbstractContextManager[object]]] = {
    "waiting": lambda storage, name: in_order(storage, name),
    "patient": lambda storage, name: in_order(storage, name, patient=True),
    "try-lock": in_order_if_free,
}


@pytest.fixture
def storage(tmp_path: Path) -> GitRepository:
    return init_bare(tmp_path / "demo.git", "")


def held_here(storage: GitRepository) -> list[str]:
    return [name for name in LOCK_ORDER if repo_lock(storage, name).is_held_here()]


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize(("earlier", "later"), PAIRS)
def test_asking_for_an_earlier_lock_while_holding_a_later_one_raises_at_once(
    storage: GitRepository, form: str, earlier: LockName, later: LockName
) -> None:
    def ask() -> object:
        with in_order(storage, later), FORMS[form](storage, earlier):
            return "taken"

    # Held by another process, the earlier lock would make a patient caller wait for good.
    with held_flock(repo_lock(storage, earlier).path):
        refused = outcome_of(ask, within=5)
    assert isinstance(refused, RuntimeError)
    assert f"the {earlier} lock is taken before the {later} lock" in str(refused)
    assert held_here(storage) == []


@pytest.mark.parametrize("patient", [False, True])
@pytest.mark.parametrize(("earlier", "later"), PAIRS)
def test_the_unit_of_work_refuses_the_wrong_order_too(
    repo: ContentRepository, earlier: LockName, later: LockName, patient: bool
) -> None:
    rolled: list[str] = []
    with holding(repo, later), pytest.raises(RuntimeError, match=f"the {earlier} lock is taken before"):
        with holding(repo, earlier, lambda _: rolled.append(earlier), patient=patient):
            pass
    assert rolled == []
    assert held_here(repo.storage) == []


@pytest.mark.parametrize("names", [("drafts", "publish"), ("publish", "housekeeping"), ("drafts", "drafts")])
def test_locks_named_out_of_order_in_one_call_are_refused_before_any_is_taken(
    storage: GitRepository, names: tuple[LockName, ...]
) -> None:
    with pytest.raises(RuntimeError, match="in the order housekeeping, publish, drafts"):
        with in_order(storage, *names):
            pass
    assert held_here(storage) == []


def test_locks_are_taken_in_order_and_let_go_at_the_end(storage: GitRepository) -> None:
    with in_order(storage, *LOCK_ORDER, patient=True):
        assert held_here(storage) == list(LOCK_ORDER)
    assert held_here(storage) == []


def test_a_lock_held_already_is_lent_however_late_in_the_order(storage: GitRepository) -> None:
    with in_order(storage, "publish", "drafts"):
        with in_order(storage, "publish"), in_order(storage, "publish", "drafts", patient=True):
            assert held_here(storage) == ["publish", "drafts"]
        assert held_here(storage) == ["publish", "drafts"]  # the inner blocks took nothing to let go
        with in_order_if_free(storage, "publish") as free:
            assert not free  # not free for a second job, and not refused either
    assert held_here(storage) == []


def test_a_try_lock_in_order_takes_a_free_lock_and_skips_a_held_one(tmp_path: Path) -> None:
    storage = GitRepository(init_bare(tmp_path / "demo.git", "").path, LockBudget(0.05))
    with in_order_if_free(storage, "housekeeping") as free:
        assert free and held_here(storage) == ["housekeeping"]
        with in_order(storage, "housekeeping", "publish"):  # lent, not waited for (Busy)
            assert held_here(storage) == ["housekeeping", "publish"]
    with held_flock(repo_lock(storage, "housekeeping").path), in_order_if_free(storage, "housekeeping") as free:
        assert not free and held_here(storage) == []


def test_a_lock_that_stays_held_lets_go_of_the_ones_taken_before_it(tmp_path: Path) -> None:
    storage = GitRepository(init_bare(tmp_path / "demo.git", "").path, LockBudget(0.05))
    with held_flock(repo_lock(storage, "drafts").path), pytest.raises(Busy):
        with in_order(storage, "housekeeping", "publish", "drafts"):
            pass
    assert held_here(storage) == []

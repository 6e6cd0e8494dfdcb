"""Waiting for a repository lock someone else holds is bounded: in time, and in how many threads
wait at once. Real threads against a real flock held through another open file."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gitstore.errors import Busy
from gitstore.storage.api import LockBudget, RepoLock
from gitstore.storage.locks import is_held
from tests.conftest import held_flock


def outcome_of(take: Callable[[], object], *, within: float = 10) -> object:
    """What `take` returned or raised, run in a thread that must end `within` seconds."""
    found: list[object] = []

    def run() -> None:
        try:
            found.append(take())
        except Exception as exc:
            found.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "still waiting for the lock"
    return found[0]


def take(lock: RepoLock) -> Callable[[], str]:
    def taking() -> str:
        with lock.held():
            assert is_held(lock.path)
        return "taken"

    return taking


def flock_waits(path: Path) -> int:
    return sum(t.name == f"flock {path}" for t in threading.enumerate())


def until(condition: Callable[[], bool]) -> None:
    give_up = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < give_up, "never happened"
        time.sleep(0.005)


def test_a_wait_past_the_budget_is_busy_and_the_lock_is_taken_once_free(tmp_path: Path) -> None:
    lock = RepoLock(tmp_path / "drafts.lock", LockBudget(0.2))
    with held_flock(lock.path):
        refused = outcome_of(take(lock))
        assert isinstance(refused, Busy)
        assert "drafts lock" in refused.detail
    assert outcome_of(take(lock)) == "taken"
    assert not is_held(lock.path)


def test_one_thread_waits_for_a_held_lock_however_many_callers_gave_up(tmp_path: Path) -> None:
    lock = RepoLock(tmp_path / "drafts.lock", LockBudget(0.02))
    with held_flock(lock.path):
        for _ in range(20):
            assert isinstance(outcome_of(take(lock)), Busy)
        assert flock_waits(lock.path) == 1
    assert outcome_of(take(lock)) == "taken"  # takes over the wait left behind
    until(lambda: flock_waits(lock.path) == 0)
    assert not is_held(lock.path)


def test_callers_past_the_waiters_budget_are_refused_at_once(tmp_path: Path) -> None:
    budget = LockBudget(30, waiters=2)
    first, second = (RepoLock(tmp_path / f"{name}.lock", budget) for name in ("a", "b"))
    results: list[object] = []
    with held_flock(first.path), held_flock(second.path):
        waiters = [threading.Thread(target=lambda lock=lock: results.append(take(lock)())) for lock in (first, second)]
        for thread in waiters:
            thread.start()
        until(lambda: budget.waiting == 2)
        # Waiting for either lock counts against the budget the two share.
        assert isinstance(outcome_of(take(first), within=5), Busy)
        assert isinstance(outcome_of(take(RepoLock(tmp_path / "c.lock", budget)), within=5), str)  # free: no wait
    for thread in waiters:
        thread.join(10)
    assert results == ["taken", "taken"]
    assert budget.waiting == 0


def test_a_patient_caller_waits_past_the_budget(tmp_path: Path) -> None:
    lock = RepoLock(tmp_path / "drafts.lock", LockBudget(0.05))
    taken = threading.Event()

    def patient() -> None:
        with lock.held(patient=True):
            taken.set()

    thread = threading.Thread(target=patient)
    with held_flock(lock.path):
        thread.start()
        assert not taken.wait(0.5)  # ten budgets on, it still waits
    thread.join(10)
    assert taken.is_set()


def test_reentry_does_not_wait(tmp_path: Path) -> None:
    lock = RepoLock(tmp_path / "drafts.lock", LockBudget(0.05, waiters=0))
    with lock.held(), lock.held():
        assert lock.is_held_here()
    assert not is_held(lock.path)


@pytest.mark.parametrize("patient", [False, True])
def test_a_lock_taken_after_a_wait_is_let_go(tmp_path: Path, patient: bool) -> None:
    lock = RepoLock(tmp_path / "drafts.lock", LockBudget(10))
    release = threading.Event()

    def hold() -> None:
        with held_flock(lock.path):
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    until(lambda: is_held(lock.path))
    results: list[str] = []

    def wait_then_hold() -> None:
        with lock.held(patient=patient):
            results.append("taken")

    waiter = threading.Thread(target=wait_then_hold)
    waiter.start()
    release.set()
    holder.join(10)
    waiter.join(10)
    assert results == ["taken"]
    assert not is_held(lock.path)

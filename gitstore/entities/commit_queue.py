"""Group commit: single draft changes that queue for the drafts lock land together.

Every single change ends in a durable ref move, and on a shared disk the syncfs and folder
fsync of that move cost more than the rest of the time a writer holds the drafts lock. So a
writer does not take the lock for itself alone: it queues its job, then waits for the lock.
Whoever gets the lock first commits every job queued by then (the "leader", as in a database's
group commit), paying for one syncfs and one folder fsync; the others find their job done when
their turn comes and only hand the lock on. A job that has to go alone (one that reads other
entities, or shares a key or a path with a job before it) is left for the next round, so the
order of changes is the order they queued in.

Only this process's threads share a queue; uvicorn's other workers take turns with the lock
as before, each committing its own queue. Publishes queue the same way for the publish lock
(gitstore.publishing.rounds).

A writer whose wait for the lock ends in Busy takes its job back out of the queue, so it is
never committed after its caller was told nothing was written. If a leader has taken the job
already, it is being committed that moment, and the writer waits for the round instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gitstore.storage.api import GitRepository, LockName, in_order, repo_lock

__all__ = ["Job", "run_queued"]


@dataclass(eq=False)
class Job:
    """One writer's change, and how it ended: `result` or `error`."""

    work: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None

    def finish(self, result: Any) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True


#: Commits jobs (the first always) while holding the lock, finishing or failing each it takes;
#: returns the ones it left for a later round, in order.
Commit = Callable[[Sequence[Job]], Sequence[Job]]

_queues: dict[str, list[Job]] = {}
_queues_guard = threading.Lock()
# Notified at the end of every round: a job taken out of its queue is done or back in it.
_round_ended = threading.Condition(_queues_guard)


def run_queued(name: str, storage: GitRepository, job: Job, commit: Commit, *, lock: LockName = "drafts") -> Any:
    """Run `job` with whatever else is queued under `name`, holding `storage`'s lock `lock`;
    its result, or its error raised."""
    if repo_lock(storage, lock).is_held_here():
        # The caller decided something under the lock: this job goes alone, now, not after
        # other threads' jobs that queued meanwhile.
        left = commit([job])
        assert not left, "a job alone is always taken"
    else:
        with _queues_guard:
            _queues.setdefault(name, []).append(job)
        try:
            with in_order(storage, lock):
                while not job.done:
                    _lead_round(name, commit)
        except Exception as failure:  # Busy, or a lock file whose folder went with its repository
            _withdraw_or_wait(name, job, failure)
    if job.error is not None:
        raise job.error
    return job.result


def _lead_round(name: str, commit: Commit) -> None:
    """Commit every job queued under `name` that can go in one round (holding the lock)."""
    with _queues_guard:
        jobs, _queues[name] = _queues[name], []
    left: list[Job] = []
    try:
        left = list(commit(jobs))
    except BaseException as exc:
        for other in jobs:
            if not other.done:
                other.fail(exc)
        raise
    finally:
        with _round_ended:
            _queues[name][:0] = left
            _round_ended.notify_all()


def _withdraw_or_wait(name: str, job: Job, failure: Exception) -> None:
    """Take `job` out of the queue and raise `failure`, or, if a leader has it, wait until the
    leader's round is over with it done (committed or failed) or back in the queue."""
    with _round_ended:
        while not job.done:
            queue = _queues[name]
            if job in queue:
                queue.remove(job)
                raise failure
            _round_ended.wait()

"""Single changes committed in rounds under the drafts lock (group commit, see
gitstore.entities.commit_queue): one durable move of every ref of a round, one index transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from gitstore.entities.batches import roll_forward_drafts, write_entity_drafts
from gitstore.entities.commit_queue import Job, run_queued
from gitstore.entities.draft_branch import FOLD_AT, fold_drafts
from gitstore.entities.model import Author, WriteResult
from gitstore.entities.plan import Change, DraftChange, Made, Planned, commit_change, plan_change, tip_of
from gitstore.entities.preconditions import Precondition, check_precondition_format
from gitstore.entities.reads import entity_view
from gitstore.entities.rules import DraftRules
from gitstore.entities.snapshots import (
    published_commit,
    remember,
    signature,
)
from gitstore.entities.work import holding
from gitstore.errors import (
    Busy,
    StaleVersion,
)
from gitstore.repository import ContentRepository, draft_ref
from gitstore.storage.api import (
    CommitId,
    Signature,
    after_commit_point,
    disk_errors,
    ensure_room,
    read_ref,
    set_ref,
    set_refs,
)


def write_change(
    repo: ContentRepository,
    key: str,
    change: Change,
    *,
    author: Author,
    expected: Precondition,
    action: str | None,
    summary: str | None = None,
    extra_trailers: Sequence[tuple[str, str]] = (),
    rules: DraftRules,
) -> WriteResult:
    """One entity's change, made under `rules`; its own ref is the commit point. Changes
    queued for the drafts lock at the same moment land together (gitstore.entities.commit_queue)."""
    git = repo.storage.git
    ref = draft_ref(key)
    check_precondition_format(expected)
    # Build the objects before taking the lock: writers of different entities overlap here.
    seen = read_ref(git, ref)
    with disk_errors():
        planned = plan_change(git, key, seen, change, expected)
    sig = signature(author)
    work = _Queued(key, change, expected, action, summary, extra_trailers, rules, sig, seen, planned)
    outcome = run_queued(str(repo.path), repo.storage, Job(work), partial(_commit_queued, repo))
    if isinstance(outcome, WriteResult):
        return outcome  # left as it was, or written as a batch
    made, planned, waiting = outcome
    # What it answers is read after the lock: the change is made, other writers may go on.
    remember(made.snapshot)  # the next change to it, and the fold, start from this snapshot
    entity = entity_view(git, made.snapshot, "draft", made.commit, published_commit(repo, key))
    warnings = rules.warnings(repo, [planned]).get(key, ())
    if waiting >= FOLD_AT:
        # Busy: the lock is held long (an import); the change is made, and the next fold takes it.
        with after_commit_point(f"the change to {key!r}"), contextlib.suppress(Busy):
            fold_drafts(repo)
    return WriteResult(entity, created=planned.current is None, changed=True, warnings=warnings)


@dataclass(frozen=True, slots=True)
class _Queued:
    """A single change waiting for the drafts lock, planned on the tip its writer saw."""

    key: str
    change: Change
    expected: Precondition
    action: str | None
    summary: str | None
    extra_trailers: Sequence[tuple[str, str]]
    rules: DraftRules
    sig: Signature
    seen: CommitId | None
    planned: Planned


def _commit_queued(repo: ContentRepository, jobs: Sequence[Job]) -> Sequence[Job]:
    """Under the drafts lock: commit queued single changes, in order, with one durable move of
    all their refs and one index transaction. A job that cannot share the round with the jobs
    before it (see `DraftRules.claims_of`) ends the round and waits for the next; the first
    always goes."""
    with holding(repo, "drafts", roll_forward_drafts):
        return _commit_in_rounds(repo, jobs)


def _commit_in_rounds(repo: ContentRepository, jobs: Sequence[Job]) -> Sequence[Job]:
    git = repo.storage.git
    ready: list[tuple[Job, Planned, Made]] = []
    claimed: set[str] = set()
    for position, job in enumerate(jobs):
        w: _Queued = job.work
        try:
            with disk_errors():
                tip = read_ref(git, draft_ref(w.key))
                planned = w.planned if tip == w.seen else plan_change(git, w.key, tip, w.change, w.expected)
                rules = w.rules
                claims = rules.claims_of(planned)
                if ready and (rules.reads_others(planned) or claimed & claims):
                    _commit_round(repo, ready)
                    return jobs[position:]
                if planned.is_noop:
                    current = planned.current
                    assert current is not None
                    view = entity_view(git, current, "draft", tip, published_commit(repo, w.key))
                    job.finish(WriteResult(view, False, False))
                    continue
                rules.check(repo, planned)
                if rules.takes_claims(planned) and rules.check_claims(repo, [planned]):
                    if ready:
                        _commit_round(repo, ready)
                        return jobs[position:]
                    # It displaces another entity (a placeholder giving up its path): that
                    # entity's delete must land with it, in one batch.
                    one = DraftChange(w.key, w.change, w.action, w.summary, w.expected, w.extra_trailers)
                    author = Author(w.sig.name, w.sig.email)
                    summary = w.summary or f"Change {w.key}"
                    job.finish(write_entity_drafts(repo, [one], rules=rules, author=author, summary=summary)[0])
                    continue
                resolve = partial(tip_of, repo)
                made = commit_change(
                    repo, planned, w.sig, w.action, w.summary, w.extra_trailers, rules=rules, resolve=resolve
                )
        except Exception as exc:  # this job's own failure: a precondition, a rule, a full disk
            job.fail(exc)
            continue
        ready.append((job, planned, made))
        claimed |= claims
        if w.rules.reads_others(planned):
            _commit_round(repo, ready)
            return jobs[position + 1 :]
    _commit_round(repo, ready)
    return []


def _commit_round(repo: ContentRepository, ready: Sequence[tuple[Job, Planned, Made]]) -> None:
    """Move every ready job's ref durably at once, then index them all; finish each job."""
    if not ready:
        return  # every job of the round failed or changed nothing: no syncfs, no transaction
    git = repo.storage.git
    moves = [(draft_ref(p.key), p.tip, made.commit) for _, p, made in ready]
    try:
        with disk_errors():
            ensure_room(repo.path)
            set_refs(git, moves)  # the commit point of every change in the round
    except (StaleVersion, Busy):
        # A ref moved under us, or a lock file is in the way: nothing moved; go one at a time
        # so that only the jobs concerned fail.
        for job, planned, made in ready:
            try:
                with disk_errors():
                    set_ref(git, draft_ref(planned.key), expected=planned.tip, new=made.commit)
            except Exception as exc:
                job.fail(exc)
        ready = [entry for entry in ready if not entry[0].done]
    except Exception as exc:
        for job, _, _ in ready:
            job.fail(exc)
        return
    waiting = 0
    with after_commit_point(f"the changes to {', '.join(p.key for _, p, _ in ready)}"):
        rows = [made.row for _, _, made in ready]
        waiting = repo.index.record_drafts(rows, [made.logged for _, _, made in ready], unfolded=True)
    for job, planned, made in ready:
        job.finish((made, planned, waiting))

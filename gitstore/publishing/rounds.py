"""Group publishing: publishes queued for the publish lock land together (ADR 0008, for `main`).

A publish holds the publish lock while it waits for the drafts lock, plans, folds `draft` and
moves its refs durably, and under the load bench's mixed run (16 connections, 2 workers) the
next publishes queued behind it for all of that, each paying the wait, a fold and a flush of
its own. So a publish queues, as a draft change does (gitstore.entities.commit_queue), then
waits for the publish lock; whoever gets it (the leader) plans every publish queued by then,
in order, each on the aggregate tree the one before leaves, and lands them together
(gitstore.publishing.landing): one wait for the drafts lock, one fold, one commit on `main`
each, one durable move, then the index for each in order. The others find their publish done
when their turn at the lock comes.

Results are what one publish at a time would give. Planning reads the index, which a round
updates only at its end, so:
- a publish that touches what one before it in the round touches (a key, a base_path or a
  translation slot, taken or left), or reads what it moves (a key it asks for that is live
  already at the version asked, so that planning skips it, or that was deleted before it was
  ever live), ends the round: it is planned again in the next, against the index as this one
  left it;
- a publish whose plan or parts read other entities' live state goes alone, after every
  publish queued before it has landed: one that publishes every draft (what is unpublished
  depends on the publishes before it), deletes or takes down, holds members or links (or did,
  in its live version: the links part reads dependents and reverse links from the index), or
  moves more published refs than one durable move takes;
- a round of several publishes moves at most that many published refs: readers find what
  `main`'s newest commit moved through it (gitstore.entities.snapshots), and what an earlier
  commit of the round moved through its published ref, which must move in the same durable
  move. After a crash `roll_forward` applies every commit of the round, not only the last.
A publish that fails (its If-Match, a path taken) fails alone, planned first in a round: one
that fails after others were planned is planned again at the head of the next round, against
the index as they left it.

A round planned before the drafts lock is kept under it only if it reads the drafts through
nothing but the tips of the keys it asks for, none of which moved: one that ends a publish
(a failure, or nothing to publish) is planned again under the lock, since what a failure read
(a placeholder's draft, a container's members) is not among those tips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from gitstore.entities.api import (
    Author,
    Job,
    Snapshot,
    document_id,
    draft_tip,
    fold_ahead,
    holding,
    load_snapshot,
    published_commit,
    roll_forward_drafts,
    run_queued,
)
from gitstore.errors import EntityNotFound
from gitstore.publishing.landing import Prepared, land
from gitstore.publishing.parts import PublishParts
from gitstore.publishing.publish import (
    PublishNote,
    PublishRecord,
    PublishTarget,
    apply_publish,
    check_note,
    prepare_publish,
    publish_record,
    roll_forward,
)
from gitstore.repository import MAIN, ContentRepository
from gitstore.storage.api import (
    PACKED_THRESHOLD,
    CommitId,
    TreeId,
    after_commit_point,
    commit_tree,
    disk_errors,
    read_ref,
)

__all__ = ["PublishRequest", "publish_queued"]


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One publish as its caller asked for it: `chosen` gives its targets once it runs."""

    chosen: Callable[[], list[PublishTarget]]
    author: Author
    note: PublishNote
    every_draft: bool = False  # its targets are what is unpublished when it runs


def publish_queued(repo: ContentRepository, request: PublishRequest, parts: PublishParts) -> PublishRecord:
    """Publish `request` with `parts` (gitstore.content's), with whatever else is queued for the
    publish lock; raises what gitstore.publishing.publish.publish_targets raises."""
    check_note(request.note)
    return run_queued(  # type: ignore[no-any-return]
        f"{repo.path}#publish", repo.storage, Job(request), partial(_round, repo, parts), lock="publish"
    )


@dataclass(frozen=True, slots=True)
class _Taken:
    job: Job
    prepared: Prepared
    remembered: list[object]  # what each part remembered of the live site before it


@dataclass
class _Planned:
    """A round as planned: the publishes it lands, how the jobs it does not land end (a failure,
    or nothing to publish), the jobs left for the next round, and the draft tips it planned from."""

    taken: list[_Taken] = field(default_factory=list)
    ended: list[tuple[Job, Callable[[], PublishRecord] | BaseException]] = field(default_factory=list)
    left: Sequence[Job] = ()
    tips: dict[str, CommitId | None] = field(default_factory=dict)
    under_lock: bool = False  # its plan reads more drafts than its targets' tips

    def holds(self, repo: ContentRepository) -> bool:
        """Whether a plan made before the drafts lock was taken still holds under it."""
        return not self.under_lock and not self.ended and all(_tip(repo, key) == tip for key, tip in self.tips.items())

    def end_jobs(self) -> None:
        for job, outcome in self.ended:
            if isinstance(outcome, BaseException):
                job.fail(outcome)
            else:
                _finish(job, outcome)


def _round(repo: ContentRepository, parts: PublishParts, jobs: Sequence[Job]) -> Sequence[Job]:
    """Land every job that can go in one round, holding the publish lock; the rest, in order,
    for the next."""
    with holding(repo, "publish", roll_forward):
        landed, left = _land_round(repo, parts, jobs)
        if landed:
            with after_commit_point(f"the publishes up to {landed[-1][1]}"):
                for _, commit in landed:  # in order: each is `main` in turn
                    apply_publish(repo, commit)
            for taken, commit in landed:
                record = publish_record(taken.prepared, commit, taken.job.work.author)
                _finish(taken.job, partial(parts.after, repo, record, taken.remembered))
    return left


def _land_round(
    repo: ContentRepository, parts: PublishParts, jobs: Sequence[Job]
) -> tuple[list[tuple[_Taken, CommitId]], Sequence[Job]]:
    """Plan the round's jobs and land them: (each landed with its commit, the jobs left).

    The round is planned, and the changes waiting folded, before the drafts lock is taken
    (other writers need not wait for that), then checked under it: a plan that reads the
    drafts only through its targets' tips holds if none of them moved. One that reads more
    (every draft, members, a delete) is planned under the lock."""
    git = repo.storage.git
    main = read_ref(git, MAIN)
    root = commit_tree(git, main) if main is not None else None
    early = _plan_round(repo, parts, jobs, root) if not jobs[0].work.every_draft else None
    ahead = fold_ahead(repo) if early is not None and not early.under_lock else None
    with holding(repo, "drafts", roll_forward_drafts):
        planned = early if early is not None and early.holds(repo) else _plan_round(repo, parts, jobs, root)
        planned.end_jobs()
        if not planned.taken:
            return [], planned.left
        try:
            with disk_errors():
                commits = land(repo, main, [t.prepared for t in planned.taken], ahead=ahead)
        except Exception as exc:  # nothing of the round moved (`land` moves its refs at once)
            for t in planned.taken:
                t.job.fail(exc)
            return [], planned.left
    return list(zip(planned.taken, commits, strict=True)), planned.left


def _plan_round(repo: ContentRepository, parts: PublishParts, jobs: Sequence[Job], root: TreeId | None) -> _Planned:
    """Which of `jobs` land in one round, each planned on the tree the one before leaves."""
    planned = _Planned()
    moved: set[str] = set()  # the keys the round's publishes move
    touched: set[str] = set()  # what they touch (`_slots`)
    for position, job in enumerate(jobs):
        request: PublishRequest = job.work
        if planned.taken and request.every_draft:
            planned.left = jobs[position:]
            break
        chosen: dict[str, CommitId] = {}
        outcome = _plan(repo, parts, job, root, planned.tips, chosen)
        if planned.taken and (isinstance(outcome, BaseException) or chosen.keys() & moved):
            # Planned against the index as it was before the round, a failure may be one a
            # publish before it clears, and a key skipped as live already may be one it moves.
            planned.left = jobs[position:]
            break
        if not isinstance(outcome, _Taken):
            planned.ended.append((job, outcome))
            continue
        slots, alone = _slots(repo, outcome.prepared, chosen)
        # Every published ref a round of several moves goes in its one durable move, right
        # after `main`: readers find a key an earlier commit of the round moved by its ref.
        crowded = len(moved | outcome.prepared.plan.keys()) > PACKED_THRESHOLD
        if planned.taken and (alone or crowded or slots & touched):
            planned.left = jobs[position:]
            break
        planned.taken.append(outcome)
        moved |= outcome.prepared.plan.keys()
        touched |= slots
        root = outcome.prepared.tree
        if alone or request.every_draft:
            planned.under_lock = True
            planned.left = jobs[position + 1 :]
            break
    return planned


def _plan(
    repo: ContentRepository,
    parts: PublishParts,
    job: Job,
    root: TreeId | None,
    tips: dict[str, CommitId | None],
    chosen: dict[str, CommitId],
) -> _Taken | Callable[[], PublishRecord] | BaseException:
    """`job` planned on top of `root`: what it lands, or the record it ends with if it has
    nothing to publish, or its failure. `tips` is given the draft tips of the keys it asks for
    as planning starts, `chosen` the commit each key it asks for (expanded) goes live at, those
    live already too."""
    request: PublishRequest = job.work
    try:
        with disk_errors():
            targets = request.chosen()
            tips.update((t.key, _tip(repo, t.key)) for t in targets)
            remembered = parts.before(repo, [t.key for t in targets])
            prepared = prepare_publish(
                repo,
                targets,
                author=request.author,
                note=request.note,
                describe=parts.describer(repo),
                expand=partial(parts.expand, repo),
                root=root,
                chosen=chosen,
            )
    except Exception as exc:  # its own failure: a precondition, a path taken, a full disk
        return exc
    if prepared is None:
        return partial(parts.after, repo, PublishRecord(None, request.author, None, []), remembered)
    return _Taken(job, prepared, remembered)


def _tip(repo: ContentRepository, key: str) -> CommitId | None:
    try:
        return draft_tip(repo, key)
    except EntityNotFound:
        return None


def _finish(job: Job, record: Callable[[], PublishRecord]) -> None:
    try:
        job.finish(record())
    except Exception as exc:
        job.fail(exc)


def _slots(repo: ContentRepository, prepared: Prepared, chosen: dict[str, CommitId]) -> tuple[set[str], bool]:
    """What a publish touches that another in the round must not (its keys, and the base_paths
    and translation slots each takes or leaves), and whether it must go alone: it moves more
    published refs than one durable move takes, or a version it moves or reads (as it goes
    live, or as it is live) reads other entities."""
    git = repo.storage.git
    alone = len(prepared.plan) > PACKED_THRESHOLD
    slots: set[str] = set()
    for key in prepared.plan.keys() | chosen.keys():
        snap = prepared.plan.get(key)
        live = published_commit(repo, key)
        versions = [snap or load_snapshot(git, chosen[key]), load_snapshot(git, live) if live is not None else None]
        alone = alone or any(version is not None and _reads_others(version) for version in versions)
        if snap is None:
            continue  # read, not moved
        slots.add(f"key\0{key}")
        for version in versions:
            if version is None:
                continue
            doc = version.document
            slots.add(f"document\0{document_id(key, doc)}\0{doc.locale}")
            if doc.base_path is not None:
                slots.add(f"path\0{doc.base_path}")
    return slots, alone


def _reads_others(version: Snapshot) -> bool:
    doc = version.document
    return version.deleted or doc.unpublishing is not None or doc.members is not None or any(doc.links.values())

"""`refs/heads/draft`: every current draft in one tree, caught up with the entity refs in folds.

A single change commits on its entity's own ref (the commit point) and records itself in the
index as waiting to be folded; it does not touch `draft`. A fold later adds the waiting changes
to `draft`, one commit for each run of changes by one author (so blame names people), each
change listed in order as `Gitstore-Folded: <key> <sha>`.
Writing the aggregate on every change cost a shard tree, a root tree, a commit and a second
durable ref move inside the drafts lock: half of the time a write held it, and a cost that grew
with the repository (a shard holds ~390 entities at 100k), both measured in ADR 0007.

Two ways to read its head, and each caller picks one on purpose:
- `folded_draft_head` folds first, so it is never older than an acknowledged change. Whatever
  derives content or an order from `draft` uses it: a clone, an export, the event feed, a
  publish's place among drafts, an import's If-Match and its dry run's report.
- `draft_head_as_is` only reads the ref, as `git` would, and writes nothing: a plain read such
  as `GET /repos/{repo}` must not commit, and may show `draft` up to a fold behind.
The service also folds every second, and a writer folds once 1,000 changes wait, so a
bare-repository reader is never far behind either.

A batch (`write_drafts`) keeps `draft` as its commit point; it folds first, under the same lock,
so the batch commit sits on top of every change made before it. A publish folds too, but moves
`draft` in the same durable ref move as `main` (`pending_fold`, built ahead of the lock by
`fold_ahead`): one flush for both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gitstore.entities.snapshots import load_snapshot
from gitstore.entities.trailers import format_message
from gitstore.errors import StaleVersion, StorageFull
from gitstore.repository import DRAFT, ContentRepository
from gitstore.storage.api import (
    CommitId,
    CommitRecord,
    GitHandle,
    commit_id,
    commit_tree,
    disk_errors,
    ensure_room,
    in_order,
    read_commit,
    read_ref,
    set_ref,
    update_aggregate,
    write_commit,
)

__all__ = [
    "FOLD_AT",
    "PendingFold",
    "dependents_trailers",
    "draft_head_as_is",
    "fold_drafts",
    "fold_ahead",
    "folded_draft_head",
    "pending_fold",
]

log = logging.getLogger("gitstore.drafts")

#: A writer folds once this many changes wait: bounds the work of one fold and the lag of a
#: repository that nothing reads and no service folds (the library used from a script).
FOLD_AT = 1000

_ATTEMPTS = 3


def folded_draft_head(repo: ContentRepository) -> CommitId | None:
    """Fold every change made so far into `draft`, then read its head: a write, for readers that
    must not see `draft` older than an acknowledged change.

    On a full disk the fold cannot be written; reads carry on with `draft` as it is."""
    try:
        fold_drafts(repo)
    except StorageFull:
        log.warning("no room to fold draft changes into refs/heads/draft in %s", repo.name)
    return draft_head_as_is(repo)


def draft_head_as_is(repo: ContentRepository) -> CommitId | None:
    """The head of `draft` as it is now, writing nothing: changes made since the last fold are
    on their entity refs but not in it yet."""
    return read_ref(repo.storage.git, DRAFT)


def fold_drafts(repo: ContentRepository) -> bool:
    """Add one commit to `draft` showing every change that waits; True if there were any.

    Called with the drafts lock held, it does everything under it. Otherwise it takes the lock
    only to read what waits and to move `draft`: the trees are built between the two, so
    writers are not held up by them.
    """
    if repo.index.unfolded_mark() is None:
        return False
    with disk_errors():
        if repo.storage.drafts_lock.is_held_here():
            head, waiting = _waiting(repo)
            return bool(waiting) and _move(repo, head, _fold_commit(repo, head, waiting), waiting)
        for _ in range(_ATTEMPTS):
            with in_order(repo.storage, "drafts"):
                head, waiting = _waiting(repo)
            if not waiting:
                return False
            commit = _fold_commit(repo, head, waiting)
            with in_order(repo.storage, "drafts"):
                # Read together under the lock, `head` shows exactly what `waiting` does not.
                if read_ref(repo.storage.git, DRAFT) == head and _move(repo, head, commit, waiting):
                    return True
    return False  # a batch or another fold kept moving `draft`; what waits is the next fold's


@dataclass(frozen=True, slots=True)
class PendingFold:
    """The changes `waiting`, folded into `commit` on top of `head` but not yet on `draft`: its
    owner moves `draft` from `head` to `commit` (with other refs, in one durable move), then
    calls `recorded`, all under the drafts lock."""

    head: CommitId | None
    commit: CommitId
    waiting: list[tuple[str, str]]

    def recorded(self, repo: ContentRepository) -> None:
        """`draft` is at `commit` now: the index stops listing `waiting` as unfolded."""
        repo.index.record_fold(str(self.commit), self.waiting)


def pending_fold(repo: ContentRepository, ahead: PendingFold | None = None) -> PendingFold | None:
    """The fold `fold_drafts` would make now, without moving `draft`; None if nothing waits,
    or there is no room to write it. Only with the drafts lock held. `ahead`, a fold built
    before the lock was taken (`fold_ahead`), is used if `draft` has not moved since: only the
    changes made after it are folded here, on top of it."""
    assert repo.storage.drafts_lock.is_held_here(), "a pending fold is made and moved under the drafts lock"
    try:
        return _fold_now(repo, ahead)
    except StorageFull:
        log.warning("no room to fold draft changes into refs/heads/draft in %s", repo.name)
        return None


def fold_ahead(repo: ContentRepository) -> PendingFold | None:
    """The fold of the changes waiting now, built without the drafts lock for `pending_fold` to
    finish under it: the lock is then held only for what came after. None if nothing waits."""
    try:
        return _fold_now(repo, None)
    except StorageFull:
        return None  # `pending_fold` tries again, and says so


def _fold_now(repo: ContentRepository, ahead: PendingFold | None) -> PendingFold | None:
    if repo.index.unfolded_mark() is None:
        return None
    head, waiting = _waiting(repo)
    if not waiting:
        return None
    with disk_errors():
        if ahead is not None and ahead.head == head and waiting[: len(ahead.waiting)] == ahead.waiting:
            later = waiting[len(ahead.waiting) :]
            if not later:
                return ahead
            if not _same_run(repo, ahead.waiting[-1], later[0]):  # else one commit holds both
                return PendingFold(head, _fold_commit(repo, ahead.commit, later), waiting)
        return PendingFold(head, _fold_commit(repo, head, waiting), waiting)


def _same_run(repo: ContentRepository, before: tuple[str, str], after: tuple[str, str]) -> bool:
    git = repo.storage.git
    return _person(read_commit(git, commit_id(before[1]))) == _person(read_commit(git, commit_id(after[1])))


def _waiting(repo: ContentRepository) -> tuple[CommitId | None, list[tuple[str, str]]]:
    return read_ref(repo.storage.git, DRAFT), repo.index.unfolded()


def _fold_commit(repo: ContentRepository, head: CommitId | None, waiting: list[tuple[str, str]]) -> CommitId:
    """The commits that fold `waiting` onto `head`: one for each run of changes by one author,
    so that `git log` and `git blame` on `draft` name the person behind every line. Returns
    the newest."""
    git = repo.storage.git
    for run in _runs_by_author(git, waiting):
        changes = {}
        for key, commit in run:
            snap = load_snapshot(git, commit.id)
            changes[key] = None if snap.deleted else snap.tree
        root = commit_tree(git, head) if head is not None else None
        tree = update_aggregate(git, root, changes)
        sig = run[-1][1].author  # the newest change's time: `draft` as of a moment has all of it
        message = _message(run) + dependents_trailers(repo, list(dict.fromkeys(key for key, _ in run)))
        head = write_commit(git, sig, message, tree, [head] if head is not None else [])
    assert head is not None
    return head


def _runs_by_author(git: GitHandle, waiting: list[tuple[str, str]]) -> list[list[tuple[str, CommitRecord]]]:
    runs: list[list[tuple[str, CommitRecord]]] = []
    for key, sha in waiting:
        commit = read_commit(git, commit_id(sha))
        if runs and _person(runs[-1][-1][1]) == _person(commit):
            runs[-1].append((key, commit))
        else:
            runs.append([(key, commit)])
    return runs


def _person(commit: CommitRecord) -> tuple[str, str]:
    return commit.author.name, commit.author.email


def dependents_trailers(repo: ContentRepository, keys: list[str]) -> str:
    """`Gitstore-Dependents: <key> <dependent> ...` for each of `keys` (one line each, even
    with none), the draft view's dependents as the index knows them now: an event's payload is
    fixed when its commit is made (ADR 0011). Nothing for a repository no layer above describes."""
    if repo.describe_drafts is None or not keys:
        return ""
    found = repo.describe_drafts(keys)
    return "".join(f"Gitstore-Dependents: {' '.join([key, *found[key]])}\n" for key in keys)


def _message(run: list[tuple[str, CommitRecord]]) -> str:
    """One change: its own summary. Several: how many and to what, then each one's summary."""
    summaries = [commit.message.split("\n", 1)[0] for _, commit in run]
    folded = [("Folded", f"{key} {commit.id}") for key, commit in run]
    if len(run) == 1:
        return format_message(summaries[0], folded)
    keys = list(dict.fromkeys(key for key, _ in run))
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    subject, trailers = format_message(f"{len(run)} changes to {shown}", folded).split("\n", 1)
    # Indented, a summary can never be read as a trailer.
    return subject + "\n\n" + "".join(f"  {line}\n" for line in summaries) + trailers


def _move(repo: ContentRepository, head: CommitId | None, commit: CommitId, waiting: list[tuple[str, str]]) -> bool:
    ensure_room(repo.path)
    try:
        set_ref(repo.storage.git, DRAFT, expected=head, new=commit)
    except StaleVersion:
        # Only something other than gitstore moves `draft` outside the drafts lock. The changes
        # stay waiting and the next fold builds on whatever `draft` is now.
        log.warning("refs/heads/draft moved outside gitstore in %s; folding again later", repo.name)
        return False
    repo.index.record_fold(str(commit), waiting)
    return True

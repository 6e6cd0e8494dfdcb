"""Landing publishes on `main`: one commit each, moved with the fold of `draft` in one durable move.

A publish planned under the drafts lock (`Prepared`: what goes live, the aggregate tree `main`
will hold, the message but for the drafts it saw) lands here, alone or with the publishes
queued behind it (gitstore.publishing.rounds), each its own commit on `main` in order. Which
drafts existed when they went live orders publishes among draft changes exactly
(gitstore.events), which commit times to the second cannot, so the changes waiting to be
folded are folded first and every commit names that fold: they all go live in the same
instant, the rename of `main`, under the drafts lock held from planning to here.

`draft`, `main` and (while they are few) the published refs move in one `set_refs`: one flush
where each ref on its own cost one, renamed in that order, so a crash between renames leaves
what `roll_forward` and a later fold finish, as a crash between separate moves did. If
something other than gitstore moved `draft` or a published ref, or holds a lock file, nothing
moved: the fold is made on its own and `main` moves alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gitstore.entities.api import PendingFold, Snapshot, draft_head_as_is, fold_drafts, pending_fold
from gitstore.errors import Busy, StaleVersion
from gitstore.repository import DRAFT, MAIN, ContentRepository, published_ref
from gitstore.storage.api import (
    PACKED_THRESHOLD,
    CommitId,
    GitHandle,
    Signature,
    TreeId,
    after_commit_point,
    ensure_room,
    read_ref,
    set_ref,
    set_refs,
    write_commit,
)

__all__ = ["Prepared", "land"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """One publish, planned and checked, not yet on `main`."""

    plan: dict[str, Snapshot]  # key -> the version that goes live
    tree: TreeId  # main's aggregate tree once it is live
    sig: Signature
    message: Callable[[CommitId | None], str]  # its commit's message, given the drafts it saw


def land(
    repo: ContentRepository, main: CommitId | None, prepared: Sequence[Prepared], *, ahead: PendingFold | None = None
) -> list[CommitId]:
    """Commit each of `prepared` on `main` (at `main` now), in order, each tree built on the one
    before: the commits, the last of them `main`'s new head. Holding the publish and drafts
    locks; `ahead`, the fold built before the drafts lock was taken, if any. Raises
    StaleVersion if `main` moved."""
    git = repo.storage.git
    ensure_room(repo.path)
    fold = pending_fold(repo, ahead)
    commits = _chain(git, main, prepared, fold.commit if fold is not None else draft_head_as_is(repo))
    try:
        _move_together(repo, fold, main, commits[-1], prepared)
    except (StaleVersion, Busy):
        fold_drafts(repo)
        commits = _chain(git, main, prepared, draft_head_as_is(repo))
        set_ref(git, MAIN, expected=main, new=commits[-1])
    return commits


def _chain(
    git: GitHandle, main: CommitId | None, prepared: Sequence[Prepared], drafts: CommitId | None
) -> list[CommitId]:
    commits: list[CommitId] = []
    for publish in prepared:
        parents = [commits[-1]] if commits else [main] if main is not None else []
        commits.append(write_commit(git, publish.sig, publish.message(drafts), publish.tree, parents))
    return commits


def _move_together(
    repo: ContentRepository,
    fold: PendingFold | None,
    main: CommitId | None,
    head: CommitId,
    prepared: Sequence[Prepared],
) -> None:
    git = repo.storage.git
    moves = [(DRAFT, fold.head, fold.commit)] if fold is not None else []
    moves.append((MAIN, main, head))
    live = {key: snap.commit for publish in prepared for key, snap in publish.plan.items()}
    if len(live) <= PACKED_THRESHOLD:  # more go through one packed-refs rewrite as main is applied
        moves += [
            (published_ref(key), read_ref(git, published_ref(key)), commit) for key, commit in sorted(live.items())
        ]
    set_refs(git, moves)
    if fold is not None:
        # The publishes are live: a full disk now must not tell their callers they failed.
        with after_commit_point(f"the fold {fold.commit} of refs/heads/draft"):
            fold.recorded(repo)

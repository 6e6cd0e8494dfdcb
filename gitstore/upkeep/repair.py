"""Repair and reindex: bring everything derived back in line with the commit points.

Commit points, the things that say what happened:
    refs/drafts/<key>   for a draft change to one entity
    refs/heads/draft    for a batch of draft changes (its newest commit lists them)
    refs/heads/main     for publishes
Derived, rebuilt from those when they lag (a kill -9 between two steps of a write):
    refs/published/<key>, refs/heads/draft, the SQLite index.
Single changes wait in the index to be folded into refs/heads/draft; an index that lost them
(dropped, or a power cut took its last transactions) is caught by the entity refs it lags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitstore.entities.api import (
    changes_back_to,
    dependents_trailers,
    fold_drafts,
    index_rows,
    load_snapshot,
    pruned_changes,
    published_commit,
    roll_forward_drafts,
)
from gitstore.index.api import ChangeRow, PublishRow
from gitstore.publishing.api import publish_row, published_row, roll_forward, sync_live_mirror
from gitstore.repository import DRAFT, MAIN, ContentRepository
from gitstore.storage.api import (
    EVERY_REF_LOCK,
    CommitId,
    GitHandle,
    TreeId,
    commit_id,
    commit_tree,
    entity_path,
    first_parent_history,
    gitstore_signature,
    in_order,
    read_ref,
    refs_under,
    set_ref,
    subtree_id,
    sweep_stale_locks,
    update_aggregate,
    write_commit,
)

__all__ = ["RepairReport", "reindex", "repair"]

_DRAFTS = "refs/drafts/"


@dataclass
class RepairReport:
    removed_locks: list[str] = field(default_factory=list)
    rolled_forward_publish: bool = False
    rolled_forward_batch: bool = False
    reindexed_drafts: list[str] = field(default_factory=list)
    repaired_draft_view: list[str] = field(default_factory=list)
    live_objects_copied: int = 0


def repair(repo: ContentRepository) -> RepairReport:
    """Run at startup: clear locks left by dead writers, finish a half-applied publish, and
    catch the index and `draft` branch up with every entity's own ref."""
    report = RepairReport()
    git = repo.storage.git
    if repo.index.needs_rebuild:  # an index of an older schema was dropped
        reindex(repo)
        repo.index.needs_rebuild = False
    storage = repo.storage
    # Patient: nothing may be served before a crash's leftovers are repaired.
    with in_order(storage, "housekeeping", "publish", "drafts", patient=True):
        # Holding all three, no live gitstore writer or housekeeper owns a ref lock or
        # packed-refs.lock: any left was left by a dead one.
        report.removed_locks = sweep_stale_locks(git, EVERY_REF_LOCK)
        report.rolled_forward_publish = roll_forward(repo)
        report.rolled_forward_batch = roll_forward_drafts(repo)
        fold_drafts(repo)
        known = repo.index.draft_commits()
        lagging = {k: tip for k, tip in _draft_tips(git).items() if known.get(k) != str(tip)}
        changes = []
        for key, tip in sorted(lagging.items()):
            changes += _reindex_draft(repo, key, tip, stop_at=known.get(key))
        _record_changes_in_time_order(repo, changes)
        report.reindexed_drafts = sorted(lagging)
        report.repaired_draft_view = _repair_draft_view(repo, lagging)
        report.live_objects_copied = sync_live_mirror(repo)
    return report


def reindex(repo: ContentRepository) -> int:
    """Throw the index away and rebuild it from refs. Returns the number of entities."""
    git = repo.storage.git
    with in_order(repo.storage, "publish", "drafts", patient=True):
        roll_forward_drafts(repo)
        fold_drafts(repo)
        repo.index.clear()
        tips = _draft_tips(git)
        changes = []
        for key, tip in sorted(tips.items()):
            changes += _reindex_draft(repo, key, tip, stop_at=None)
        changes += pruned_changes(git)  # the activity of entities pruned since: an audit trail
        _record_changes_in_time_order(repo, changes)
        head = read_ref(git, DRAFT)
        if head is not None:
            repo.index.record_drafts([], draft_head=str(head))
        _repair_draft_view(repo, tips)  # changes an older index held to fold are gone with it
        _reindex_published(repo, tips)
    return len(tips)


def _draft_tips(git: GitHandle) -> dict[str, CommitId]:
    return refs_under(git, _DRAFTS)


def _reindex_draft(repo: ContentRepository, key: str, tip: CommitId, *, stop_at: str | None) -> list[ChangeRow]:
    """Index the entity's tip, and return the changes from `tip` back to `stop_at`."""
    git = repo.storage.git
    repo.index.record_drafts([index_rows(git, key, tip)])
    return changes_back_to(git, key, tip, stop_at=stop_at)


def _record_changes_in_time_order(repo: ContentRepository, changes: list[ChangeRow]) -> None:
    changes.sort(key=lambda c: (c.at, c.key, c.version))
    repo.index.record_changes(changes)


def _publish_log(git: GitHandle, main: CommitId, *, stop_at: str | None) -> list[PublishRow]:
    """Publish operations on main's first-parent history back to `stop_at`, oldest first."""
    history = first_parent_history(git, main, stop_at=commit_id(stop_at) if stop_at is not None else None)
    return [publish_row(git, oid) for oid in history][::-1]


def _reindex_published(repo: ContentRepository, tips: dict[str, CommitId]) -> None:
    git = repo.storage.git
    main = read_ref(git, MAIN)
    if main is None:
        return
    rows = []
    for key in tips:
        oid = published_commit(repo, key)
        if oid is not None:
            rows.append(published_row(git, key, oid))
    repo.index.record_published(rows, main_head=str(main), publishes=_publish_log(git, main, stop_at=None))


def _repair_draft_view(repo: ContentRepository, tips: dict[str, CommitId]) -> list[str]:
    """Add one commit to `draft` for entities whose subtree there is not their tip's tree."""
    git = repo.storage.git
    head = read_ref(git, DRAFT)
    root = commit_tree(git, head) if head is not None else None
    changes: dict[str, TreeId | None] = {}
    for key, tip in tips.items():
        snap = load_snapshot(git, tip)
        want = None if snap.deleted else snap.tree
        if subtree_id(git, root, entity_path(key)) != want:
            changes[key] = want
    if not changes:
        return []
    tree = update_aggregate(git, root, changes)
    sig = gitstore_signature()
    keys = sorted(changes)
    message = f"Repair draft view: {', '.join(keys[:5])}" + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    message += "\n\n" + "".join(f"Gitstore-Repaired: {k} {tips[k]}\n" for k in keys) + dependents_trailers(repo, keys)
    commit = write_commit(git, sig, message, tree, [head] if head else [])
    set_ref(git, DRAFT, expected=head, new=commit)
    repo.index.record_drafts([], draft_head=str(commit))
    return keys

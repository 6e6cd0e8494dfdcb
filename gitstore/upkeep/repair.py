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

import pygit2

from gitstore.entities.api import changes_back_to, index_rows, roll_forward_drafts
from gitstore.entities.draft_branch import dependents_trailers, fold_drafts
from gitstore.entities.pruned import pruned_changes
from gitstore.entities.snapshots import load_snapshot, published_commit
from gitstore.index.api import ChangeRow, PublishRow
from gitstore.publishing.api import publish_row, published_row, roll_forward
from gitstore.publishing.mirror import sync_live_mirror
from gitstore.repository import DRAFT, MAIN, ContentRepository
from gitstore.storage.api import (
    entity_path,
    read_ref,
    set_ref,
    subtree_id,
    sweep_stale_locks,
    update_aggregate,
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
    with (
        storage.housekeeping_lock.held(patient=True),
        storage.publish_lock.held(patient=True),
        storage.drafts_lock.held(patient=True),
    ):
        # Holding all three, no live gitstore writer or housekeeper owns a ref lock or
        # packed-refs.lock: any left was left by a dead one.
        report.removed_locks = sweep_stale_locks(git, ["refs", "HEAD.lock", "packed-refs.lock"])
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
    with repo.storage.publish_lock.held(patient=True), repo.storage.drafts_lock.held(patient=True):
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


def _draft_tips(git: pygit2.Repository) -> dict[str, pygit2.Oid]:
    tips = {}
    for name in git.references:
        if name.startswith(_DRAFTS):
            target = git.references[name].target
            tips[name[len(_DRAFTS) :]] = target
    return tips


def _reindex_draft(repo: ContentRepository, key: str, tip: pygit2.Oid, *, stop_at: str | None) -> list[ChangeRow]:
    """Index the entity's tip, and return the changes from `tip` back to `stop_at`."""
    git = repo.storage.git
    repo.index.record_drafts([index_rows(git, key, tip)])
    return changes_back_to(git, key, tip, stop_at=stop_at)


def _record_changes_in_time_order(repo: ContentRepository, changes: list[ChangeRow]) -> None:
    changes.sort(key=lambda c: (c.at, c.key, c.version))
    repo.index.record_changes(changes)


def _publish_log(git: pygit2.Repository, main: pygit2.Oid, *, stop_at: str | None) -> list[PublishRow]:
    """Publish operations on main's first-parent history back to `stop_at`, oldest first."""
    found = []
    oid: pygit2.Oid | None = main
    while oid is not None and str(oid) != stop_at:
        found.append(publish_row(git, oid))
        parents = git[oid].parent_ids
        oid = parents[0] if parents else None
    return found[::-1]


def _reindex_published(repo: ContentRepository, tips: dict[str, pygit2.Oid]) -> None:
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


def _repair_draft_view(repo: ContentRepository, tips: dict[str, pygit2.Oid]) -> list[str]:
    """Add one commit to `draft` for entities whose subtree there is not their tip's tree."""
    git = repo.storage.git
    head = read_ref(git, DRAFT)
    root = git[head].tree if head is not None else None
    changes: dict[str, pygit2.Oid | None] = {}
    for key, tip in tips.items():
        snap = load_snapshot(git, tip)
        want = None if snap.deleted else snap.tree
        if subtree_id(root, entity_path(key)) != want:
            changes[key] = want
    if not changes:
        return []
    tree = update_aggregate(git, root, changes)
    sig = pygit2.Signature("gitstore", "gitstore@localhost")
    keys = sorted(changes)
    message = f"Repair draft view: {', '.join(keys[:5])}" + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    message += "\n\n" + "".join(f"Gitstore-Repaired: {k} {tips[k]}\n" for k in keys) + dependents_trailers(repo, keys)
    commit = git.create_commit(None, sig, sig, message, tree, [head] if head else [])
    set_ref(git, DRAFT, expected=head, new=commit)
    repo.index.record_drafts([], draft_head=str(commit))
    return keys

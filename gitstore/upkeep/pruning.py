"""Pruning (seed 004), defined honestly for git.

Git history is immutable and pins name exact commits, so a version in the middle of a
branch can never be cut out: every later commit, and every pin to it, names it through its
parent. What can go is:

1. Whole entities that are deleted in draft, were never live (not now, not in the publish
   log), and are named by no manifest of any version of any entity that stays. They are
   pruned top-down: a never-published deleted container goes first, and then members that
   only it named, in later passes. Shared members stay while anything else names them.
   Their draft branch (`refs/drafts/<key>`) and index rows go; the `draft` branch's history
   still shows their trees, because that history is an audit record.
2. Objects nothing reaches: objects written for writes that lost a race or changed nothing,
   and the commits of the branches removed in step 1. `git prune` removes loose ones older
   than a grace period, so an object a writer made a moment ago and is about to point a ref
   at is never touched.

Never removed: anything a ref reaches (every version of every remaining entity, hence every
pinned commit, since a pin must be a commit of its member's append-only branch), anything
ever published, the latest version of anything not deleted.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gitstore.entities.api import (
    MEMBERS_FILE,
    Author,
    changes_back_to,
    fold_drafts,
    load_snapshot,
    members_from_bytes,
    record_pruned,
    roll_forward_drafts,
)
from gitstore.publishing.api import roll_forward
from gitstore.repository import ContentRepository, draft_ref
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    ObjectId,
    delete_ref,
    entry_id,
    first_parent_commits,
    in_order,
    read_blob,
    refs_under,
    signature,
)

__all__ = ["PruneReport", "prune"]

_DRAFTS = "refs/drafts/"
DEFAULT_GRACE_SECONDS = 3600


@dataclass
class PruneReport:
    dry_run: bool
    pruned_entities: list[str] = field(default_factory=list)
    # deleted, never-published entities that stay, each with the manifest that still names it
    kept: dict[str, str] = field(default_factory=dict)
    unreachable_objects: int = 0
    seconds: float = 0.0


# Who prunes when nobody is named (the command line, housekeeping): gitstore itself.
_GITSTORE = Author("gitstore", "gitstore@localhost")


def prune(
    repo: ContentRepository,
    *,
    dry_run: bool = False,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    author: Author = _GITSTORE,
) -> PruneReport:
    """Prune what can go (see above), recording the pruned entities' activity and retiring
    their keys (gitstore.entities.pruned) before their branches go."""
    start = time.monotonic()
    report = PruneReport(dry_run=dry_run)
    git = repo.storage.git
    with in_order(repo.storage, "publish", "drafts"):
        roll_forward(repo)
        roll_forward_drafts(repo)
        tips = refs_under(git, _DRAFTS)
        ever_live = repo.index.ever_live_keys()
        candidates = {k for k, tip in tips.items() if load_snapshot(git, tip).deleted and k not in ever_live}
        named_by = {holder: _every_member_named(git, tip) for holder, tip in tips.items()}
        pruned: set[str] = set()
        while True:  # top-down: what only a pruned container named goes in the next pass
            staying = tips.keys() - pruned
            naming: dict[str, str] = {}
            for holder in sorted(staying):
                for member in named_by[holder]:
                    if member != holder:
                        naming.setdefault(member, holder)
            newly = {k for k in candidates - pruned if k not in naming}
            if not newly:
                report.kept = {k: f"named by a manifest of {naming[k]!r}" for k in sorted(candidates - pruned)}
                break
            pruned |= newly
        report.pruned_entities = sorted(pruned)
        if not dry_run and pruned:
            # `draft` must show every change before a branch goes: its history is the audit record
            # of the pruned trees, and a change still waiting to fold would name a pruned commit.
            fold_drafts(repo)
            # The record first: once a branch is gone, its activity is only there.
            at = datetime.now(UTC).isoformat(timespec="seconds")
            record_pruned(
                git,
                {k: changes_back_to(git, k, tips[k], stop_at=None) for k in report.pruned_entities},
                at=at,
                author=signature(author.name, author.email),
            )
            for key in report.pruned_entities:
                delete_ref(git, draft_ref(key))
            repo.index.forget(report.pruned_entities)
    report.unreachable_objects = _prune_objects(repo, dry_run=dry_run, grace_seconds=grace_seconds)
    report.seconds = round(time.monotonic() - start, 3)
    return report


def _every_member_named(git: GitHandle, tip: CommitId) -> set[str]:
    """Every key any version on this branch names in its manifest (read once per blob)."""
    named: set[str] = set()
    seen: set[ObjectId] = set()
    for commit in first_parent_commits(git, tip):
        manifest = entry_id(git, commit.tree, MEMBERS_FILE)
        if manifest is not None and manifest not in seen:
            seen.add(manifest)
            named.update(m.key for m in members_from_bytes(read_blob(git, manifest)))
    return named


def _prune_objects(repo: ContentRepository, *, dry_run: bool, grace_seconds: int) -> int:
    expire = "now" if grace_seconds <= 0 else f"{grace_seconds}.seconds.ago"
    args = ["git", "--git-dir", str(repo.path), "prune", "-v", f"--expire={expire}"]
    if dry_run:
        args.append("-n")
    # Under the housekeeping lock, like every other remover of objects (repack, erasure): a
    # backup holds it while it packs what its ref snapshot reaches, so nothing it needs goes.
    with in_order(repo.storage, "housekeeping"):
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())

"""Entities and their drafts: read any view, and change the draft one commit at a time.

Every change is a commit on `refs/drafts/<key>`, made by compare-and-swap on that ref while
holding the repository's drafts lock; the same lock covers the index row, which also queues the
change to be folded into `refs/heads/draft` (gitstore.entities.draft_branch), so they never
disagree about order. A change that leaves the content as it was makes no commit.

Preconditions (seed 001's lock version): pass `expected=IfMatch(commit)` to write only if the
draft tip is still that commit, `IfAbsent()` to create only, `IfExists()` to change only what
exists; a failed one raises StaleVersion.

The layer's modules, by job: preconditions, reads, writes (one entity), plan (one change and
its commit), slots (base_path and translation uniqueness among drafts), rounds (the group
commit of single changes), batches (several entities at once, and their roll-forward).
"""

from __future__ import annotations

from gitstore.entities.batches import changes_back_to as changes_back_to
from gitstore.entities.batches import index_rows as index_rows
from gitstore.entities.batches import roll_forward_drafts, write_drafts
from gitstore.entities.plan import Change as Change
from gitstore.entities.plan import DraftChange
from gitstore.entities.preconditions import Check, IfAbsent, IfExists, IfMatch, Precondition
from gitstore.entities.reads import (
    entity_view,
    ever_published,
    get_entity,
    list_entities,
    list_versions,
    read_each,
    require_exists,
)
from gitstore.entities.snapshots import unknown_entity
from gitstore.entities.writes import (
    delete_entity,
    discard_draft,
    merge_patch,
    patch_draft,
    put_draft,
    restore_version,
)

__all__ = [
    "Check",
    "DraftChange",
    "IfAbsent",
    "IfExists",
    "IfMatch",
    "Precondition",
    "delete_entity",
    "discard_draft",
    "entity_view",
    "ever_published",
    "get_entity",
    "list_entities",
    "list_versions",
    "merge_patch",
    "patch_draft",
    "put_draft",
    "read_each",
    "restore_version",
    "require_exists",
    "roll_forward_drafts",
    "unknown_entity",
    "write_drafts",
]

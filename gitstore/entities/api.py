"""Entities and their drafts: read any view, and change the draft one commit at a time.

Every change is a commit on `refs/drafts/<key>`, made by compare-and-swap on that ref while
holding the repository's drafts lock; the same lock covers the index row, which also queues the
change to be folded into `refs/heads/draft` (gitstore.entities.draft_branch), so they never
disagree about order. A change that leaves the content as it was makes no commit.

Preconditions (seed 001's lock version): pass `expected=IfMatch(commit)` to write only if the
draft tip is still that commit, `IfAbsent()` to create only, `IfExists()` to change only what
exists; a failed one raises StaleVersion.

Writes go through gitstore.content, which runs every layer's rules (gitstore.entities.rules).
The layer's modules, by job: preconditions, reads, writes (one entity), plan (one change and
its commit), rules (what layers above plug into a write), rounds (the group commit of single
changes), batches (several entities at once, and their roll-forward), work (the locks in
their order, each taken once).
"""

from __future__ import annotations

from gitstore.entities.batches import changes_back_to as changes_back_to
from gitstore.entities.batches import index_rows as index_rows
from gitstore.entities.batches import roll_forward_drafts
from gitstore.entities.plan import Change as Change
from gitstore.entities.plan import DraftChange, Planned
from gitstore.entities.preconditions import IfAbsent, IfExists, IfMatch, Precondition
from gitstore.entities.reads import (
    entity_view,
    ever_published,
    get_entity,
    list_entities,
    list_versions,
    read_each,
    require_exists,
)
from gitstore.entities.rules import DraftRule, DraftRules, Resolve
from gitstore.entities.snapshots import unknown_entity
from gitstore.entities.writes import merge_patch

__all__ = [
    "DraftChange",
    "DraftRule",
    "DraftRules",
    "IfAbsent",
    "IfExists",
    "IfMatch",
    "Planned",
    "Precondition",
    "Resolve",
    "entity_view",
    "ever_published",
    "get_entity",
    "list_entities",
    "list_versions",
    "merge_patch",
    "read_each",
    "require_exists",
    "roll_forward_drafts",
    "unknown_entity",
]

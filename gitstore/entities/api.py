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

This module is the layer's one public module: the layers above, the service and the benches
import the entities layer only from here (tests/test_architecture.py checks it).
"""

from __future__ import annotations

from gitstore.entities.batches import changes_back_to, index_rows, roll_forward_drafts, write_entity_drafts
from gitstore.entities.commit_queue import Job, run_queued
from gitstore.entities.document import (
    ENTITY_FILE,
    MEMBERS_FILE,
    PLACEHOLDER_TYPES,
    TAKEN_DOWN,
    TEXT_DIR,
    TYPE_NAME,
    UNPUBLISHING_FILE,
    UNPUBLISHING_TYPES,
    Content,
    Document,
    Member,
    Unpublishing,
    base_path_problem,
    canonical_base_path,
    document_id,
    document_to_files,
    files_to_document,
    is_placeholder,
    leaves,
    members_from_bytes,
    members_to_bytes,
    parse_document,
    placeholder_kind,
    writable,
)
from gitstore.entities.draft_branch import (
    PendingFold,
    dependents_trailers,
    draft_head_as_is,
    fold_ahead,
    fold_drafts,
    folded_draft_head,
    pending_fold,
)
from gitstore.entities.erasures import ERASURES_FILE, ERASURES_REF, pin_resolver
from gitstore.entities.model import Author, Entity, Page, VersionInfo, WriteResult
from gitstore.entities.plan import Change, DraftChange, Planned
from gitstore.entities.preconditions import IfAbsent, IfExists, IfMatch, Precondition
from gitstore.entities.pruned import pruned_changes, record_pruned
from gitstore.entities.reads import (
    entity_view,
    ever_published,
    get_entity,
    list_entities,
    list_versions,
    read_each,
    require_exists,
)
from gitstore.entities.rules import DraftRule, DraftRules, Registry, Resolve
from gitstore.entities.snapshots import (
    Snapshot,
    draft_tip,
    forget_cached,
    load_snapshot,
    newest_publish,
    published_by,
    published_commit,
    signature,
    unknown_entity,
)
from gitstore.entities.trailers import format_message, parse_repeated, parse_trailers, summary_of
from gitstore.entities.work import after_release, holding
from gitstore.entities.writes import (
    deleting,
    merge_patch,
    write_document,
    write_merge_patch,
    write_old_version,
    write_published_back,
    write_tombstone,
)

__all__ = [
    # the document: an entity's content, as files in its commit's tree
    "ENTITY_FILE",
    "MEMBERS_FILE",
    "PLACEHOLDER_TYPES",
    "TAKEN_DOWN",
    "TEXT_DIR",
    "TYPE_NAME",
    "UNPUBLISHING_FILE",
    "UNPUBLISHING_TYPES",
    "Content",
    "Document",
    "Member",
    "Unpublishing",
    "base_path_problem",
    "canonical_base_path",
    "document_id",
    "document_to_files",
    "files_to_document",
    "is_placeholder",
    "leaves",
    "members_from_bytes",
    "members_to_bytes",
    "parse_document",
    "placeholder_kind",
    "writable",
    # records and reads of any view
    "Author",
    "Entity",
    "Page",
    "Snapshot",
    "VersionInfo",
    "WriteResult",
    "draft_tip",
    "entity_view",
    "ever_published",
    "forget_cached",
    "get_entity",
    "list_entities",
    "list_versions",
    "load_snapshot",
    "newest_publish",
    "published_by",
    "published_commit",
    "read_each",
    "require_exists",
    "unknown_entity",
    # commits' messages and signatures
    "format_message",
    "parse_repeated",
    "parse_trailers",
    "signature",
    "summary_of",
    # the draft write path, for the door (gitstore.content) and the layers that plug into it
    "Change",
    "DraftChange",
    "DraftRule",
    "DraftRules",
    "IfAbsent",
    "IfExists",
    "IfMatch",
    "Job",
    "Planned",
    "Precondition",
    "Registry",
    "Resolve",
    "after_release",
    "changes_back_to",
    "holding",
    "index_rows",
    "merge_patch",
    "run_queued",
    "write_document",
    "write_entity_drafts",
    "write_merge_patch",
    "write_old_version",
    "write_published_back",
    "write_tombstone",
    "deleting",
    # `refs/heads/draft`, erasures and pruning, for upkeep and erasure
    "ERASURES_FILE",
    "ERASURES_REF",
    "dependents_trailers",
    "draft_head_as_is",
    "fold_ahead",
    "fold_drafts",
    "folded_draft_head",
    "PendingFold",
    "pending_fold",
    "pin_resolver",
    "pruned_changes",
    "record_pruned",
    "roll_forward_drafts",
]

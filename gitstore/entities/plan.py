"""Planning one entity's change and writing its commit (not yet on any ref)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitstore.entities.document import (
    Content,
    changed_parts,
    document_id,
    document_to_files,
)
from gitstore.entities.model import Author
from gitstore.entities.preconditions import IfAbsent, IfExists, IfMatch, Precondition
from gitstore.entities.pruned import refuse_retired
from gitstore.entities.snapshots import (
    Snapshot,
    commit_time,
    draft_tip,
    load_snapshot,
    published_commit,
)
from gitstore.entities.trailers import format_message
from gitstore.errors import (
    EntityNotFound,
    StaleVersion,
)
from gitstore.index.api import ChangeRow, DraftRow
from gitstore.repository import ContentRepository
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    Signature,
    TreeId,
    write_commit,
    write_files,
)

if TYPE_CHECKING:
    from gitstore.entities.rules import DraftRules, Resolve


Change = Callable[[Snapshot | None], tuple[Content, bool]]


@dataclass(frozen=True, slots=True)
class DraftChange:
    """One entity's part of a batch: `change` maps its current draft to the new content.

    `on_commit` hears which commit holds the content (the new one, or the tip it left as it
    was) before the next change of the batch is planned, so a later change can name it."""

    key: str
    change: Change
    action: str | None = None
    summary: str | None = None
    expected: Precondition = None
    extra_trailers: Sequence[tuple[str, str]] = ()
    on_commit: Callable[[CommitId], None] | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    key: str
    tip: CommitId | None
    current: Snapshot | None
    doc: Content
    deleted: bool
    tree: TreeId

    @property
    def is_noop(self) -> bool:
        return self.current is not None and self.current.tree == self.tree


def draft_row(key: str, doc: Content, commit: CommitId, tree: TreeId, deleted: bool, version: int) -> DraftRow:
    return DraftRow(
        key,
        doc.type,
        doc.locale,
        str(commit),
        str(tree),
        doc.base_path,
        deleted,
        version,
        doc.members,
        doc.title,
        document_id(key, doc),
        doc.links,
        doc.unpublishing.type if doc.unpublishing else None,
    )


@dataclass(frozen=True, slots=True)
class Made:
    """An entity commit written for a planned change, not yet on any ref."""

    commit: CommitId
    snapshot: Snapshot  # what reading the commit back would give
    row: DraftRow
    logged: ChangeRow


def commit_change(
    repo: ContentRepository,
    planned: Planned,
    sig: Signature,
    action: str | None,
    summary: str | None,
    extra_trailers: Sequence[tuple[str, str]],
    *,
    rules: DraftRules,
    resolve: Resolve,
) -> Made:
    """Write (but point no ref at) the entity commit of one planned change, with the
    trailers `rules` add after the layer's own."""
    git = repo.storage.git
    key, current, doc, deleted, tree = planned.key, planned.current, planned.doc, planned.deleted, planned.tree
    published = published_commit(repo, key)
    live = load_snapshot(git, published) if published is not None else None
    verb = action or ("create" if current is None or current.deleted else "update")
    version = (current.version if current else 0) + 1
    edition = 1 if live is None else live.edition + (0 if _same_work(key, live, doc, deleted, tree) else 1)
    summary = summary or _summary(verb, key, current, doc)
    trailers = [
        ("Key", key),
        ("Action", verb),
        ("Version", str(version)),
        ("Edition", str(edition)),
        *extra_trailers,
    ]
    message = format_message(summary, trailers + rules.trailers(repo, planned, resolve))
    commit = write_commit(git, sig, message, tree, [planned.tip] if planned.tip else [])
    author = Author(sig.name, sig.email)
    snap = Snapshot(commit, tree, key, doc, deleted, version, edition, verb, message, author, commit_time(sig))
    return Made(
        commit,
        snap,
        draft_row(key, doc, commit, tree, deleted, version),
        ChangeRow(key, version, str(commit), verb, sig.name, sig.email, sig.time),
    )


def _same_work(key: str, live: Snapshot, doc: Content, deleted: bool, tree: TreeId) -> bool:
    """Whether `doc` is the live content, an unpublishing notice aside. Seed 001: the
    user-facing version stays the same as an item moves between states (withdrawn, republished);
    only new work on the content raises it."""
    if live.tree == tree:
        return True
    if deleted or live.deleted or (doc.unpublishing is None and live.document.unpublishing is None):
        return False
    plain = document_to_files(key, doc._replace(unpublishing=None))
    return plain == document_to_files(key, live.document._replace(unpublishing=None))


def tip_of(repo: ContentRepository, key: str) -> CommitId | None:
    try:
        return draft_tip(repo, key)
    except EntityNotFound:
        return None


def plan_change(git: GitHandle, key: str, tip: CommitId | None, change: Change, expected: Precondition) -> Planned:
    current = load_snapshot(git, tip) if tip is not None else None
    if tip is None:
        refuse_retired(git, key)
    if isinstance(expected, IfMatch) and (tip is None or str(tip) != expected.commit):
        raise StaleVersion(f"the draft of {key!r} is not at {expected.commit}", current=str(tip) if tip else None)
    if isinstance(expected, IfAbsent) and current is not None and not current.deleted:
        raise StaleVersion(f"{key!r} already exists", current=str(tip))
    if isinstance(expected, IfExists) and (current is None or current.deleted):
        raise StaleVersion(f"{key!r} has no current draft", current=str(tip) if tip else None)
    doc, deleted = change(current)
    if doc.content_id == key:
        doc = doc._replace(content_id=None)  # stored the same way as never having said it
    tree = write_files(git, document_to_files(key, doc, deleted=deleted))
    return Planned(key, tip, current, doc, deleted, tree)


def _summary(verb: str, key: str, current: Snapshot | None, doc: Content) -> str:
    if verb == "create":
        return f"Create {key}"
    if verb == "delete":
        return f"Delete {key}"
    parts = changed_parts(current.document if current else None, doc)
    return f"Update {key}: {', '.join(parts)}" if parts else f"Update {key}"

"""The single-entity writes: each builds its change and hands it, with the rules it must
follow, to the group commit (gitstore.entities.rounds). Callers go through gitstore.content."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gitstore.entities.document import (
    Content,
    Document,
    parse_document,
    writable,
)
from gitstore.entities.model import Author, WriteResult
from gitstore.entities.plan import Change
from gitstore.entities.preconditions import Precondition
from gitstore.entities.reads import find_version
from gitstore.entities.rounds import write_change
from gitstore.entities.rules import DraftRules
from gitstore.entities.snapshots import (
    Snapshot,
    draft_tip,
    load_snapshot,
    published_commit,
)
from gitstore.errors import (
    Conflict,
    EntityNotFound,
    InvalidInput,
)
from gitstore.names import validate_key
from gitstore.repository import ContentRepository

__all__ = [
    "deleting",
    "merge_patch",
    "write_document",
    "write_merge_patch",
    "write_old_version",
    "write_published_back",
    "write_tombstone",
]


def write_document(
    repo: ContentRepository,
    key: str,
    document: Content | Document | dict[str, Any],
    *,
    author: Author,
    expected: Precondition = None,
    summary: str | None = None,
    extra_trailers: Sequence[tuple[str, str]] = (),
    rules: DraftRules,
) -> WriteResult:
    """Create the entity or replace its draft with `document`.

    `summary` and `extra_trailers` let a layer above say more in the commit message (a merge
    names both of its sides)."""
    validate_key(key)
    if isinstance(document, Content):
        doc = document
    else:
        doc = parse_document(document.model_dump() if isinstance(document, Document) else document)
    return write_change(
        repo,
        key,
        lambda _current: (doc, False),
        author=author,
        expected=expected,
        action=None,
        summary=summary,
        extra_trailers=extra_trailers,
        rules=rules,
    )


def write_merge_patch(
    repo: ContentRepository,
    key: str,
    patch: dict[str, Any],
    *,
    author: Author,
    expected: Precondition = None,
    rules: DraftRules,
) -> WriteResult:
    """Apply a JSON Merge Patch (RFC 7396) to the current draft."""
    validate_key(key)
    if not isinstance(patch, dict):
        raise InvalidInput("a merge patch must be a JSON object", errors=[{"loc": [], "msg": "not an object"}])

    def change(current: Snapshot | None) -> tuple[Content, bool]:
        if current is None or current.deleted:
            raise EntityNotFound(f"no draft of {key!r} to patch", key=key)
        return parse_document(merge_patch(writable(current.document), patch)), False

    return write_change(repo, key, change, author=author, expected=expected, action="update", rules=rules)


def write_tombstone(
    repo: ContentRepository, key: str, *, rules: DraftRules, author: Author, expected: Precondition = None
) -> WriteResult:
    """Soft delete: a tombstone commit. Gone from draft views; live until the delete is published."""
    validate_key(key)
    return write_change(repo, key, deleting(key), author=author, expected=expected, action="delete", rules=rules)


def deleting(key: str) -> Change:
    """The change that deletes `key`'s draft: its content kept, marked deleted; refused when
    there is no draft left to delete."""

    def change(current: Snapshot | None) -> tuple[Content, bool]:
        if current is None or current.deleted:
            raise EntityNotFound(f"no draft of {key!r} to delete", key=key)
        return current.document, True

    return change


def write_published_back(
    repo: ContentRepository, key: str, *, rules: DraftRules, author: Author, expected: Precondition = None
) -> WriteResult:
    """Put the published content back on the draft branch as a new commit.

    The discarded work stays in history, so it can be restored later.
    """
    validate_key(key)
    git = repo.storage.git
    draft_tip(repo, key)
    published = published_commit(repo, key)
    if published is None:
        raise Conflict(f"{key!r} has never been published, so there is nothing to go back to; delete it instead")
    live = load_snapshot(git, published)
    summary = f"Discard draft of {key} (back to published version {live.version})"
    return _put_back(repo, key, live, author=author, expected=expected, action="discard", summary=summary, rules=rules)


def write_old_version(
    repo: ContentRepository,
    key: str,
    version: int | None = None,
    *,
    commit: str | None = None,
    author: Author,
    expected: Precondition = None,
    rules: DraftRules,
) -> WriteResult:
    """A new draft commit with the content of an older version, named by number or commit
    (seed 003's "undo"; rollback never rewinds)."""
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    old = load_snapshot(git, find_version(repo, key, tip, version=version, commit=commit))
    summary = f"Restore {key} to version {old.version}"
    return _put_back(repo, key, old, author=author, expected=expected, action="restore", summary=summary, rules=rules)


def _put_back(
    repo: ContentRepository,
    key: str,
    snap: Snapshot,
    *,
    author: Author,
    expected: Precondition,
    action: str,
    summary: str,
    rules: DraftRules,
) -> WriteResult:
    """A new draft commit holding `snap`'s content exactly (its tree comes back byte for byte)."""
    return write_change(
        repo,
        key,
        lambda _c: (snap.document, snap.deleted),
        author=author,
        expected=expected,
        action=action,
        summary=summary,
        rules=rules,
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result

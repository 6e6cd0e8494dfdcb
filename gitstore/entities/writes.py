"""The single-entity writes: each builds its change and hands it to the group commit
(gitstore.entities.rounds)."""

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
from gitstore.entities.preconditions import Check, Precondition
from gitstore.entities.reads import find_version
from gitstore.entities.rounds import write_change
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

# -- writes -----------------------------------------------------------------------------------


def put_draft(
    repo: ContentRepository,
    key: str,
    document: Content | Document | dict[str, Any],
    *,
    author: Author,
    expected: Precondition = None,
    summary: str | None = None,
    extra_trailers: Sequence[tuple[str, str]] = (),
    check: Check | None = None,
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
        check=check,
    )


def patch_draft(
    repo: ContentRepository,
    key: str,
    patch: dict[str, Any],
    *,
    author: Author,
    expected: Precondition = None,
    check: Check | None = None,
) -> WriteResult:
    """Apply a JSON Merge Patch (RFC 7396) to the current draft."""
    validate_key(key)
    if not isinstance(patch, dict):
        raise InvalidInput("a merge patch must be a JSON object", errors=[{"loc": [], "msg": "not an object"}])

    def change(current: Snapshot | None) -> tuple[Content, bool]:
        if current is None or current.deleted:
            raise EntityNotFound(f"no draft of {key!r} to patch", key=key)
        return parse_document(merge_patch(writable(current.document), patch)), False

    return write_change(repo, key, change, author=author, expected=expected, action="update", check=check)


def delete_entity(repo: ContentRepository, key: str, *, author: Author, expected: Precondition = None) -> WriteResult:
    """Soft delete: a tombstone commit. Gone from draft views; live until the delete is published."""
    validate_key(key)

    def change(current: Snapshot | None) -> tuple[Content, bool]:
        if current is None or current.deleted:
            raise EntityNotFound(f"no draft of {key!r} to delete", key=key)
        return current.document, True

    return write_change(repo, key, change, author=author, expected=expected, action="delete")


def discard_draft(
    repo: ContentRepository, key: str, *, author: Author, expected: Precondition = None, check: Check | None = None
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
    return _put_back(repo, key, live, author=author, expected=expected, action="discard", summary=summary, check=check)


def restore_version(
    repo: ContentRepository,
    key: str,
    version: int | None = None,
    *,
    commit: str | None = None,
    author: Author,
    expected: Precondition = None,
    check: Check | None = None,
) -> WriteResult:
    """A new draft commit with the content of an older version, named by number or commit
    (seed 003's "undo"; rollback never rewinds)."""
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    old = load_snapshot(git, find_version(repo, key, tip, version=version, commit=commit))
    summary = f"Restore {key} to version {old.version}"
    return _put_back(repo, key, old, author=author, expected=expected, action="restore", summary=summary, check=check)


def _put_back(
    repo: ContentRepository,
    key: str,
    snap: Snapshot,
    *,
    author: Author,
    expected: Precondition,
    action: str,
    summary: str,
    check: Check | None,
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
        check=check,
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

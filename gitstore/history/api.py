"""History and audit: diff, blame, the activity and publish logs, as-of reads, and three-way
merge of stale edits. Everything here reads one entity's own branch or the index; nothing walks
an aggregate branch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gitstore.entities import api as entities
from gitstore.entities.api import (
    Author,
    Content,
    DraftRules,
    Entity,
    IfMatch,
    Page,
    Snapshot,
    WriteResult,
    draft_tip,
    holding,
    load_snapshot,
    parse_document,
    published_commit,
    roll_forward_drafts,
    writable,
    write_document,
)
from gitstore.errors import EntityNotFound, InvalidInput, MergeConflict, VersionNotFound
from gitstore.names import validate_key
from gitstore.repository import ContentRepository, draft_ref
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    TreeId,
    blame_file,
    blob_at,
    commit_id,
    commit_tree,
    entry_id,
    merge_text,
    read_ref,
    tree_patch,
)

__all__ = [
    "BlameLine",
    "BlameResult",
    "Change",
    "EntityDiff",
    "FieldChange",
    "PublishLogEntry",
    "PublishLogItem",
    "blame",
    "diff",
    "get_entity_as_of",
    "list_activity",
    "list_entities_as_of",
    "list_publishes",
    "publish_seq_as_of",
]

_SHA = re.compile(r"[0-9a-f]{40}")
_VERSION = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also takes '²' and '١'
_PATH = re.compile(r"[a-z0-9_][a-z0-9_./-]{0,200}")
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # JSON Pointer (RFC 6901) into the entity document
    op: str  # "add", "remove" or "replace"
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class EntityDiff:
    key: str
    from_commit: str | None
    to_commit: str
    from_version: int | None
    to_version: int
    changes: list[FieldChange]
    patch: str


@dataclass(frozen=True, slots=True)
class BlameLine:
    line: int
    content: str
    commit: str
    version: int
    author: Author
    committed_at: datetime


@dataclass(frozen=True, slots=True)
class BlameResult:
    key: str
    path: str
    lines: list[BlameLine]


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    action: str
    version: int
    commit: str
    author: Author
    at: datetime


@dataclass(frozen=True, slots=True)
class PublishLogItem:
    key: str
    commit: str
    version: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class PublishLogEntry:
    id: int
    commit: str
    author: Author
    at: datetime
    items: list[PublishLogItem]
    summary: str = ""  # the first line of its commit on main: "Publish ...", "Unpublish ... (gone)"
    update_type: str | None = None
    change_note: str | None = None


# -- diff -------------------------------------------------------------------------------------


def diff(repo: ContentRepository, key: str, *, from_: str = "published", to: str = "draft") -> EntityDiff:
    """What changed between two versions: field by field, and as a git patch.

    `from_` and `to` each name a version number, a full commit id, "published" or "draft".
    The default answers "what will publishing change".
    """
    validate_key(key)
    tip = draft_tip(repo, key)
    old = _resolve(repo, key, tip, from_, allow_missing=True)
    new = _resolve(repo, key, tip, to, allow_missing=False)
    assert new is not None
    old_doc = _as_json(old) if old is not None else {}
    return EntityDiff(
        key=key,
        from_commit=str(old.commit) if old else None,
        to_commit=str(new.commit),
        from_version=old.version if old else None,
        to_version=new.version,
        changes=list(_field_changes(old_doc, _as_json(new), "")),
        patch=tree_patch(repo.storage.git, old.tree if old else None, new.tree),
    )


def _as_json(snap: Snapshot) -> dict[str, Any]:
    return writable(snap.document) | {"deleted": snap.deleted}


def _field_changes(old: Any, new: Any, path: str) -> Iterator[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(old.keys() | new.keys()):
            child = f"{path}/{name.replace('~', '~0').replace('/', '~1')}"
            yield from _field_changes(old.get(name, _MISSING), new.get(name, _MISSING), child)
    elif old is _MISSING:
        yield FieldChange(path, "add", None, new)
    elif new is _MISSING:
        yield FieldChange(path, "remove", old, None)
    elif old != new or type(old) is not type(new):
        yield FieldChange(path, "replace", old, new)


# -- blame ------------------------------------------------------------------------------------


def blame(repo: ContentRepository, key: str, *, path: str | None = None, field: str | None = None) -> BlameResult:
    """Who last changed each line of one of the entity's files, at its draft tip.

    `field` picks a text field's own file, or that field's lines of entity.json.
    """
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    tree = commit_tree(git, tip)
    start, end = 1, None
    if field is not None:
        path, start, end = _field_location(git, tree, field)
    path = path or "entity.json"
    if not _PATH.fullmatch(path) or ".." in path:
        raise InvalidInput(
            "path names a file of the entity, such as entity.json", errors=[{"loc": ["path"], "msg": "bad path"}]
        )
    if blob_at(git, tree, path) is None:
        raise EntityNotFound(f"{key!r} has no file {path!r}", key=key)
    commits: dict[CommitId, tuple[int, Author, datetime]] = {}
    lines = []
    for blamed in blame_file(git, path, tip):
        if blamed.line < start or (end is not None and blamed.line > end):
            continue
        if blamed.commit not in commits:
            snap = load_snapshot(git, blamed.commit)
            commits[blamed.commit] = (snap.version, snap.author, snap.at)
        version, author, at = commits[blamed.commit]
        lines.append(BlameLine(blamed.line, blamed.content, str(blamed.commit), version, author, at))
    return BlameResult(key, path, lines)


def _field_location(git: GitHandle, tree: TreeId, field: str) -> tuple[str, int, int | None]:
    """Where a field lives: its own file, or its lines inside entity.json."""
    own = f"fields/{field}.txt"
    if entry_id(git, tree, own) is not None:
        return own, 1, None
    entity = blob_at(git, tree, "entity.json")
    assert entity is not None  # every version has one
    lines = entity.decode().splitlines()
    marker = f"    {_json_string(field)}: "
    for i, line in enumerate(lines):
        if line.startswith(marker):
            end = i + 1
            while end < len(lines) and lines[end].startswith("      "):
                end += 1
            if end < len(lines) and lines[end].startswith("    ") and lines[end].strip() in ("}", "},", "]", "],"):
                end += 1
            return "entity.json", i + 1, end
    raise EntityNotFound(f"no field {field!r} in the draft")


def _json_string(value: str) -> str:
    return orjson.dumps(value).decode()


# -- activity and the publish log -------------------------------------------------------------


def list_activity(
    repo: ContentRepository,
    *,
    key: str | None = None,
    author: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> Page:
    """Every change on every write path, newest first (seed 003: see what others changed)."""
    if key is not None:
        validate_key(key)
    rows = repo.index.changes(key=key, author=author, before=cursor, limit=limit + 1)
    items = [
        Change(c.key, c.action, c.version, c.commit, Author(c.author_name, c.author_email), _at(c.at))
        for _, c in rows[:limit]
    ]
    return Page(items=items, next_cursor=str(rows[limit - 1][0]) if len(rows) > limit else None)


def list_publishes(
    repo: ContentRepository,
    *,
    cursor: int | None = None,
    limit: int = 50,
    key: str | None = None,
    author: str | None = None,
) -> Page:
    """Each publish operation, newest first: its commit on main, who, when, what moved; only
    those that moved `key`, or made by `author`, if given."""
    if key is not None:
        validate_key(key)
    rows = repo.index.publishes(before=cursor, limit=limit + 1, key=key, author=author)
    items = [
        PublishLogEntry(
            seq,
            p.commit,
            Author(p.author_name, p.author_email),
            _at(p.at),
            [PublishLogItem(*item) for item in p.items],
            p.summary,
            p.update_type,
            p.change_note,
        )
        for seq, p in rows[:limit]
    ]
    return Page(items=items, next_cursor=str(rows[limit - 1][0]) if len(rows) > limit else None)


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# -- as-of reads ------------------------------------------------------------------------------


def publish_seq_as_of(repo: ContentRepository, at: datetime) -> int | None:
    """The number of the last publish made at or before `at` (None if there was none)."""
    return repo.index.publish_seq_at(_seconds(at))


def get_entity_as_of(repo: ContentRepository, key: str, at: datetime) -> Entity:
    """What was live for `key` at moment `at`, answered from the publish log."""
    validate_key(key)
    seq = repo.index.publish_seq_at(_seconds(at))
    found = repo.index.published_as_of(key, seq) if seq is not None else None
    if found is None or found[1]:
        raise EntityNotFound(f"{key!r} was not live at {at.isoformat()}", key=key)
    return _live_entity(repo, key, found[0])


def list_entities_as_of(repo: ContentRepository, at: datetime, *, cursor: str | None = None, limit: int = 50) -> Page:
    """Every entity that was live at moment `at`, by key."""
    if cursor is not None:
        validate_key(cursor, loc=("cursor",))
    seq = repo.index.publish_seq_at(_seconds(at))
    if seq is None:
        return Page()
    rows = repo.index.live_keys_as_of(seq, after=cursor, limit=limit + 1)
    commits = dict(rows[:limit])
    items, damaged = entities.read_each(list(commits), lambda key: _live_entity(repo, key, commits[key]))
    return Page(items=items, next_cursor=rows[limit - 1][0] if len(rows) > limit else None, damaged=damaged)


def _live_entity(repo: ContentRepository, key: str, commit: str) -> Entity:
    git = repo.storage.git
    snap = load_snapshot(git, commit_id(commit))
    tip = read_ref(git, draft_ref(key))
    return entities.entity_view(git, snap, "published", tip, snap.commit)


def _seconds(at: datetime) -> int:
    if at.tzinfo is None:
        raise InvalidInput(
            "as_of needs a time zone, as RFC 3339 requires", errors=[{"loc": ["as_of"], "msg": "no offset"}]
        )
    return int(at.timestamp())


# -- three-way merge of stale edits ------------------------------------------------------------


def write_merged(
    repo: ContentRepository,
    key: str,
    base: str,
    *,
    rules: DraftRules,
    author: Author,
    document: dict[str, Any] | None = None,
    patch: dict[str, Any] | None = None,
) -> WriteResult:
    """Apply a change the client made on top of `base` (an older commit) to the current draft.

    Disjoint changes merge field by field (text fields line by line); overlapping ones raise
    MergeConflict listing each, and nothing is written.
    """
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    base_snap = load_snapshot(git, _version_commit(repo, key, tip, base))
    if document is not None:
        theirs = parse_document(document)
    else:
        theirs = parse_document(entities.merge_patch(writable(base_snap.document), patch or {}))
    # Merge while holding the drafts lock, so the tip merged onto is the tip written onto: under
    # contention a lock-free merge-and-retry loop can starve (measured with 6 racing writers).
    with holding(repo, "drafts", roll_forward_drafts):
        tip = draft_tip(repo, key)
        if tip == base_snap.commit:  # nothing happened since the client's version: a plain write
            document_, summary, trailers = theirs, None, []
        else:
            ours = load_snapshot(git, tip)
            document_ = _merge_documents(git, base_snap.document, ours.document, theirs)
            summary = f"Merge an edit of {key} made on version {base_snap.version} onto version {ours.version}"
            trailers = [("Merge-Base", str(base_snap.commit)), ("Merged-Onto", str(tip))]
        return write_document(
            repo,
            key,
            document_,
            rules=rules,
            author=author,
            expected=IfMatch(str(tip)),
            summary=summary,
            extra_trailers=trailers,
        )


def _merge_documents(git: GitHandle, base: Content, ours: Content, theirs: Content) -> Content:
    conflicts: list[dict[str, Any]] = []
    merged = _merge_value(git, writable(base), writable(ours), writable(theirs), "", conflicts)
    if conflicts:
        raise MergeConflict(f"{len(conflicts)} conflicting change(s); nothing was written", conflicts=conflicts)
    return parse_document(merged)


def _merge_value(git: GitHandle, base: Any, ours: Any, theirs: Any, path: str, conflicts: list[dict[str, Any]]) -> Any:
    if ours == theirs or base == theirs:
        return ours
    if base == ours:
        return theirs
    if all(isinstance(v, dict) for v in (base, ours, theirs)):
        result = {}
        for name in sorted(base.keys() | ours.keys() | theirs.keys()):
            child = f"{path}/{name.replace('~', '~0').replace('/', '~1')}"
            value = _merge_value(
                git, base.get(name, _MISSING), ours.get(name, _MISSING), theirs.get(name, _MISSING), child, conflicts
            )
            if value is not _MISSING:
                result[name] = value
        return result
    if all(isinstance(v, str) and "\n" in v for v in (base, ours, theirs)):
        text = merge_text(git, base, ours, theirs)
        if text is not None:
            return text
    conflicts.append({"path": path, "base": _plain(base), "ours": _plain(ours), "theirs": _plain(theirs)})
    return ours


def _plain(value: Any) -> Any:
    return None if value is _MISSING else value


# -- shared -----------------------------------------------------------------------------------


def _resolve(repo: ContentRepository, key: str, tip: CommitId, ref: str, *, allow_missing: bool) -> Snapshot | None:
    git = repo.storage.git
    if ref == "draft":
        return load_snapshot(git, tip)
    if ref == "published":
        live = published_commit(repo, key)
        if live is None and not allow_missing:
            raise VersionNotFound(f"{key!r} has never been published", key=key)
        return load_snapshot(git, live) if live is not None else None
    return load_snapshot(git, _version_commit(repo, key, tip, ref))


def _version_commit(repo: ContentRepository, key: str, tip: CommitId, ref: str) -> CommitId:
    # A commit id first: one made of decimal digits only is still a commit id, not a version.
    if _SHA.fullmatch(ref):
        return commit_id(entities.get_entity(repo, key, commit=ref).commit)
    if _VERSION.fullmatch(ref):
        return commit_id(entities.get_entity(repo, key, version=int(ref)).commit)
    raise InvalidInput(
        "name a version number, a full commit id, 'published' or 'draft'",
        errors=[{"loc": ["version"], "msg": f"bad reference {ref!r}"}],
    )

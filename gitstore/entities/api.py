"""Entities and their drafts: read any view, and change the draft one commit at a time.

Every change is a commit on `refs/drafts/<key>`, made by compare-and-swap on that ref while
holding the repository's drafts lock; the same lock covers the index row, which also queues the
change to be folded into `refs/heads/draft` (gitstore.entities.draft_branch), so they never
disagree about order. A change that leaves the content as it was makes no commit.

Preconditions (seed 001's lock version): pass `expected=IfMatch(commit)` to write only if the
draft tip is still that commit, `IfAbsent()` to create only, `IfExists()` to change only what
exists; a failed one raises StaleVersion.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pygit2

from gitstore.entities.commit_queue import Job, run_queued
from gitstore.entities.document import (
    Content,
    Document,
    changed_parts,
    document_id,
    document_to_files,
    is_placeholder,
    leaves,
    parse_document,
    writable,
)
from gitstore.entities.draft_branch import FOLD_AT, dependents_trailers, fold_drafts
from gitstore.entities.model import Author, Entity, Page, VersionInfo, WriteResult
from gitstore.entities.pruned import refuse_retired
from gitstore.entities.snapshots import (
    Snapshot,
    commit_time,
    draft_tip,
    load_snapshot,
    newest_batch,
    published_commit,
    remember,
    signature,
    unknown_entity,
)
from gitstore.entities.trailers import format_message, parse_repeated, parse_trailers, summary_of
from gitstore.errors import (
    BasePathTaken,
    Busy,
    Conflict,
    CorruptObject,
    EntityNotFound,
    InvalidDocument,
    InvalidInput,
    StaleVersion,
    TranslationTaken,
    VersionNotFound,
)
from gitstore.index.api import ChangeRow, DraftRow, ListFilter
from gitstore.names import validate_key
from gitstore.repository import DRAFT, ContentRepository, draft_ref
from gitstore.storage.api import (
    disk_errors,
    object_errors,
    read_ref,
    set_ref,
    set_refs,
    update_aggregate,
    update_refs,
    write_commit,
    write_files,
)
from gitstore.storage.space import after_commit_point, ensure_room

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

_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class IfMatch:
    """Write only if the draft tip is this commit."""

    commit: str


@dataclass(frozen=True, slots=True)
class IfAbsent:
    """Write only if there is no current draft (never created, or deleted)."""


@dataclass(frozen=True, slots=True)
class IfExists:
    """Write only if there is a current draft (created and not deleted): HTTP's `If-Match: *`."""


Precondition = IfMatch | IfAbsent | IfExists | None

#: A rule a layer above adds to a write: called with the key and the content about to be
#: committed (never for a delete), under the drafts lock, so what it reads of other entities
#: cannot change before the write lands. It raises to refuse the write.
Check = Callable[[str, Content], None]


# -- reads ------------------------------------------------------------------------------------


def get_entity(
    repo: ContentRepository,
    key: str,
    *,
    state: str = "published",
    version: int | None = None,
    commit: str | None = None,
) -> Entity:
    """One view of an entity: "published" (what is live), "draft", or a past version.

    Raises:
        EntityNotFound: nothing in that view (never published, deleted, unknown key).
        VersionNotFound: no such version or commit on this entity's draft branch.
    """
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    published = published_commit(repo, key)
    if version is not None or commit is not None:
        oid = _find_version(repo, key, tip, version=version, commit=commit)
        snap = load_snapshot(git, oid)
        label = "published" if oid == published else "draft" if oid == tip else "superseded"
        return entity_view(git, snap, label, tip, published)
    if state == "draft":
        snap = load_snapshot(git, tip)
        if snap.deleted:
            raise EntityNotFound(f"{key!r} is deleted in draft; it stays live until the delete is published", key=key)
        return entity_view(git, snap, "draft", tip, published)
    if published is None:
        raise EntityNotFound(f"{key!r} has never been published", key=key)
    snap = load_snapshot(git, published)
    if snap.deleted:
        raise EntityNotFound(f"{key!r} was deleted and the delete is published", key=key)
    return entity_view(git, snap, "published", tip, published)


def list_entities(repo: ContentRepository, where: ListFilter, *, cursor: str | None = None, limit: int = 50) -> Page:
    """Entities matching `where`, by key, from the index (never by scanning refs)."""
    if cursor is not None:
        validate_key(cursor, loc=("cursor",))
    keys = repo.index.list_keys(where, after=cursor, limit=limit + 1)
    read = partial(_deleted_draft, repo) if where.deleted else partial(get_entity, repo, state=where.state)
    items, damaged = read_each(keys[:limit], read)
    return Page(items=items, next_cursor=keys[limit - 1] if len(keys) > limit else None, damaged=damaged)


def _deleted_draft(repo: ContentRepository, key: str) -> Entity:
    """A deleted draft as it stands: the tombstone's content, which `get_entity` will not show."""
    git = repo.storage.git
    tip = draft_tip(repo, key)
    snap = load_snapshot(git, tip)
    if not snap.deleted:
        raise EntityNotFound(f"{key!r} is not deleted in draft", key=key)  # restored since the index answered
    return entity_view(git, snap, "draft", tip, published_commit(repo, key))


def read_each(keys: Sequence[str], read: Callable[[str], Entity]) -> tuple[list[Entity], list[str]]:
    """`read` of each key, for a listing: the entities, and the keys whose stored content is
    damaged. One damaged entity must not take the whole page down with it; its own URL still
    answers the corrupt-object problem, and the page says which keys it left out."""
    items, damaged = [], []
    for key in keys:
        try:
            with object_errors():
                items.append(read(key))
        except EntityNotFound:
            continue  # index lagging a concurrent delete; the next read will agree
        except CorruptObject:
            damaged.append(key)  # logged, with the object, where it was found
    return items, damaged


def require_exists(repo: ContentRepository, key: str) -> None:
    """`IfExists` for operations on live content, which act on a draft branch whatever its
    tip: StaleVersion unless `key` has one."""
    validate_key(key)
    try:
        draft_tip(repo, key)
    except EntityNotFound:
        raise StaleVersion(f"{key!r} does not exist", current=None) from None


def ever_published(repo: ContentRepository, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that were live at some point (live now, or their delete is published),
    from the index: everything a reader of the live site can know exists."""
    return {key for key, state in repo.index.states(keys).items() if state.published_commit is not None}


def list_versions(repo: ContentRepository, key: str, *, cursor: int | None = None, limit: int = 50) -> Page:
    """The draft branch's commits, newest first. `cursor` is the version to start from."""
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    start = tip if cursor is None else _find_version(repo, key, tip, version=cursor, commit=None)
    published = published_commit(repo, key)
    went_live = repo.index.publish_times(key)
    items: list[VersionInfo] = []
    oid: pygit2.Oid | None = start
    while oid is not None and len(items) < limit:
        commit = git[oid]  # history lists read commits only, never the entity's files
        trailers = parse_trailers(commit.message)
        items.append(
            VersionInfo(
                version=int(trailers.get("Version", "0")),
                edition=int(trailers.get("Edition", "0")),
                commit=str(oid),
                action=trailers.get("Action", ""),
                message=summary_of(commit.message),
                author=Author(commit.author.name, commit.author.email),
                committed_at=commit_time(commit.author),
                live=oid == published,
                published_at=datetime.fromtimestamp(went_live[str(oid)], UTC) if str(oid) in went_live else None,
            )
        )
        oid = commit.parent_ids[0] if commit.parent_ids else None
    next_cursor = str(items[-1].version - 1) if oid is not None and items else None
    return Page(items=items, next_cursor=next_cursor)


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
    return _write(
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

    return _write(repo, key, change, author=author, expected=expected, action="update", check=check)


def delete_entity(repo: ContentRepository, key: str, *, author: Author, expected: Precondition = None) -> WriteResult:
    """Soft delete: a tombstone commit. Gone from draft views; live until the delete is published."""
    validate_key(key)

    def change(current: Snapshot | None) -> tuple[Content, bool]:
        if current is None or current.deleted:
            raise EntityNotFound(f"no draft of {key!r} to delete", key=key)
        return current.document, True

    return _write(repo, key, change, author=author, expected=expected, action="delete")


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
    old = load_snapshot(git, _find_version(repo, key, tip, version=version, commit=commit))
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
    return _write(
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


# -- the write path ---------------------------------------------------------------------------

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
    on_commit: Callable[[pygit2.Oid], None] | None = None


@dataclass(frozen=True, slots=True)
class _Planned:
    key: str
    tip: pygit2.Oid | None
    current: Snapshot | None
    doc: Content
    deleted: bool
    tree: pygit2.Oid

    @property
    def is_noop(self) -> bool:
        return self.current is not None and self.current.tree == self.tree


def _write(
    repo: ContentRepository,
    key: str,
    change: Change,
    *,
    author: Author,
    expected: Precondition,
    action: str | None,
    summary: str | None = None,
    extra_trailers: Sequence[tuple[str, str]] = (),
    check: Check | None = None,
) -> WriteResult:
    """One entity's change; its own ref is the commit point. Changes queued for the drafts
    lock at the same moment land together (gitstore.entities.commit_queue)."""
    git = repo.storage.git
    ref = draft_ref(key)
    _check_precondition_format(expected)
    # Build the objects before taking the lock: writers of different entities overlap here.
    seen = read_ref(git, ref)
    with disk_errors():
        planned = _plan(git, key, seen, change, expected)
    sig = signature(author)
    work = _Queued(key, change, expected, action, summary, extra_trailers, check, sig, seen, planned)
    outcome = run_queued(str(repo.path), repo.storage.drafts_lock, Job(work), partial(_commit_queued, repo))
    if isinstance(outcome, WriteResult):
        return outcome  # left as it was, or written as a batch
    made, planned, waiting = outcome
    # What it answers is read after the lock: the change is made, other writers may go on.
    remember(made.snapshot)  # the next change to it, and the fold, start from this snapshot
    entity = entity_view(git, made.snapshot, "draft", made.commit, published_commit(repo, key))
    warnings = _live_path_warnings(repo, [planned]).get(key, ())
    if waiting >= FOLD_AT:
        # Busy: the lock is held long (an import); the change is made, and the next fold takes it.
        with after_commit_point(f"the change to {key!r}"), contextlib.suppress(Busy):
            fold_drafts(repo)
    return WriteResult(entity, created=planned.current is None, changed=True, warnings=warnings)


@dataclass(frozen=True, slots=True)
class _Queued:
    """A single change waiting for the drafts lock, planned on the tip its writer saw."""

    key: str
    change: Change
    expected: Precondition
    action: str | None
    summary: str | None
    extra_trailers: Sequence[tuple[str, str]]
    check: Check | None
    sig: pygit2.Signature
    seen: pygit2.Oid | None
    planned: _Planned


def _commit_queued(repo: ContentRepository, jobs: Sequence[Job]) -> Sequence[Job]:
    """Under the drafts lock: commit queued single changes, in order, with one durable move of
    all their refs and one index transaction. A job that cannot share the round with the jobs
    before it (see `_claims`) ends the round and waits for the next; the first always goes."""
    git = repo.storage.git
    ready: list[tuple[Job, _Planned, _Made]] = []
    claimed: set[str] = set()
    with disk_errors():
        roll_forward_drafts(repo)
    for position, job in enumerate(jobs):
        w: _Queued = job.work
        try:
            with disk_errors():
                tip = read_ref(git, draft_ref(w.key))
                planned = w.planned if tip == w.seen else _plan(git, w.key, tip, w.change, w.expected)
                claims = _claims(planned)
                if ready and (_reads_others(planned) or claimed & claims):
                    _commit_round(repo, ready)
                    return jobs[position:]
                if planned.is_noop:
                    current = planned.current
                    assert current is not None
                    view = entity_view(git, current, "draft", tip, published_commit(repo, w.key))
                    job.finish(WriteResult(view, False, False))
                    continue
                if w.check is not None and not planned.deleted:
                    w.check(w.key, planned.doc)
                if _takes_slots(planned) and _check_draft_uniqueness(repo, [planned]):
                    if ready:
                        _commit_round(repo, ready)
                        return jobs[position:]
                    # It takes a placeholder's path: the placeholder's delete must land with it.
                    one = DraftChange(w.key, w.change, w.action, w.summary, w.expected, w.extra_trailers)
                    author = Author(w.sig.name, w.sig.email)
                    job.finish(write_drafts(repo, [one], author=author, summary=w.summary or f"Change {w.key}")[0])
                    continue
                resolve = partial(_tip_of, repo)
                made = _commit_change(repo, planned, w.sig, w.action, w.summary, w.extra_trailers, resolve=resolve)
        except Exception as exc:  # this job's own failure: a precondition, a rule, a full disk
            job.fail(exc)
            continue
        ready.append((job, planned, made))
        claimed |= claims
        if _reads_others(planned):
            _commit_round(repo, ready)
            return jobs[position + 1 :]
    _commit_round(repo, ready)
    return []


def _commit_round(repo: ContentRepository, ready: Sequence[tuple[Job, _Planned, _Made]]) -> None:
    """Move every ready job's ref durably at once, then index them all; finish each job."""
    if not ready:
        return  # every job of the round failed or changed nothing: no syncfs, no transaction
    git = repo.storage.git
    moves = [(draft_ref(p.key), p.tip, made.commit) for _, p, made in ready]
    try:
        with disk_errors():
            ensure_room(repo.path)
            set_refs(git, moves)  # the commit point of every change in the round
    except (StaleVersion, Busy):
        # A ref moved under us, or a lock file is in the way: nothing moved; go one at a time
        # so that only the jobs concerned fail.
        for job, planned, made in ready:
            try:
                with disk_errors():
                    set_ref(git, draft_ref(planned.key), expected=planned.tip, new=made.commit)
            except Exception as exc:
                job.fail(exc)
        ready = [entry for entry in ready if not entry[0].done]
    except Exception as exc:
        for job, _, _ in ready:
            job.fail(exc)
        return
    waiting = 0
    with after_commit_point(f"the changes to {', '.join(p.key for _, p, _ in ready)}"):
        rows = [made.row for _, _, made in ready]
        waiting = repo.index.record_drafts(rows, [made.logged for _, _, made in ready], unfolded=True)
    for job, planned, made in ready:
        job.finish((made, planned, waiting))


def _reads_others(planned: _Planned) -> bool:
    """Whether the change's rules read other entities' drafts (its members, its links, or the
    containers that hold it when its type changes): then it goes after every change queued
    before it has landed, and before any after it."""
    retyped = planned.current is not None and planned.current.document.type != planned.doc.type
    return not planned.deleted and (planned.doc.members is not None or bool(planned.doc.links) or retyped)


def _claims(planned: _Planned) -> set[str]:
    """What a change in a round must not share with another: its key, and the base_path and
    translation slot it leaves or takes (their uniqueness is checked against the index, which
    a round updates only at its end)."""
    claims = {f"key:{planned.key}"}
    current = planned.current
    if current is not None and not current.deleted:
        claims |= _slots(planned.key, current.document)
    if not planned.deleted:
        claims |= _slots(planned.key, planned.doc)
    return claims


def _takes_slots(planned: _Planned) -> bool:
    """Whether the change takes a base_path or translation slot its entity's draft does not
    hold already. An edit that keeps both (most edits) has nothing to check: the draft passed
    the same check when it took them, and no other draft can have taken them since."""
    current = planned.current
    if planned.deleted:
        return False
    if current is None or current.deleted:
        return True
    return _slots(planned.key, planned.doc) != _slots(planned.key, current.document)


def _slots(key: str, doc: Content) -> set[str]:
    slots = {f"document:{document_id(key, doc)}:{doc.locale}"}
    if doc.base_path is not None:
        slots.add(f"path:{doc.base_path}")
    return slots


# Above this many changes, a batch writes its objects as one pack instead of one fsynced file
# each (gitstore.storage.packs): 10,000 entities take ~0.5 s instead of ~20 s.
_PACKED_BATCH = 32


def write_drafts(
    repo: ContentRepository, changes: Sequence[DraftChange], *, author: Author, summary: str
) -> list[WriteResult]:
    """Change the drafts of several entities in one atomic operation: all of them or none.

    The commit point is `refs/heads/draft`: one commit there lists every entity commit of the
    batch (`Gitstore-Batch: key sha`); the entity refs and the index follow, and are rolled
    forward from it after a crash (`roll_forward_drafts`). Readers trust that list first, so no
    one sees half a batch. Changes that leave an entity as it was are left out. Call it while
    holding the drafts lock if the changes were decided from other entities' drafts.

    Changes apply in order. A key may come more than once: each time is a new version on top of
    the last (an import brings the older versions its containers pin before the current one).
    Results follow `changes`, each the entity's draft after the whole batch.
    """
    for c in changes:
        validate_key(c.key)
        _check_precondition_format(c.expected)
    with (
        repo.storage.drafts_lock.held(),
        disk_errors(),
        repo.storage.buffered_objects(enabled=len(changes) > _PACKED_BATCH) as flush,
    ):
        roll_forward_drafts(repo)
        fold_drafts(repo)  # the batch's commit on `draft` goes on top of every change before it
        git = repo.storage.git
        sig = signature(author)
        tips: dict[str, pygit2.Oid | None] = {}  # each branch as the batch leaves it so far
        existed: dict[str, bool] = {}
        plans: dict[str, _Planned] = {}  # each entity's latest plan
        made: dict[str, list[_Made]] = {}

        def resolve(key: str) -> pygit2.Oid | None:
            # Members of a manifest written in this batch resolve to what the batch makes them.
            return tips.get(key) or _tip_of(repo, key)

        def apply(c: DraftChange) -> None:
            seen = c.key in tips
            tip = tips[c.key] if seen else read_ref(git, draft_ref(c.key))
            p = _plan(git, c.key, tip, c.change, None if seen else c.expected)
            existed.setdefault(c.key, p.current is not None)
            plans[c.key] = p
            if not p.is_noop:
                one = _commit_change(repo, p, sig, c.action, c.summary, c.extra_trailers, resolve=resolve)
                made.setdefault(c.key, []).append(one)
                tip = one.commit
            tips[c.key] = tip
            if c.on_commit is not None and tip is not None:
                c.on_commit(tip)

        def unchanged(key: str) -> WriteResult:
            current = plans[key].current  # a no-op: the tip it planned against, already read
            assert current is not None
            return WriteResult(entity_view(git, current, "draft", tips[key], published_commit(repo, key)), False, False)

        for c in changes:
            apply(c)
        if not made:
            return [unchanged(c.key) for c in changes]
        for holder, by in _check_draft_uniqueness(repo, list(plans.values())).items():
            apply(
                DraftChange(holder, _tombstone, action="delete", summary=f"Delete {holder}: {by} takes its base_path")
            )
        final = {key: versions[-1] for key, versions in made.items()}
        listed = [("Batch", f"{key} {one.commit}") for key, one in final.items()]
        trees = {key: None if plans[key].deleted else plans[key].tree for key in final}
        # Its events' dependents, as the index will know them once the batch is recorded.
        with repo.index.as_if_drafted([one.row for one in final.values()]):
            described = dependents_trailers(repo, list(final))
        head, batch = _aggregate_commit(git, trees, sig, format_message(summary, listed) + described)
        flush()  # every object of the batch is on disk before anything names it
        ensure_room(repo.path)
        set_ref(git, DRAFT, expected=head, new=batch)  # the commit point
        with after_commit_point(f"the batch {summary!r}"):
            update_refs(git, {draft_ref(key): one.commit for key, one in final.items()})
            logged = [one.logged for versions in made.values() for one in versions]
            repo.index.record_drafts([one.row for one in final.values()], logged, draft_head=str(batch))
        for one in final.values():
            remember(one.snapshot)
        warnings = _live_path_warnings(repo, [plans[key] for key in final])
        results = {
            key: WriteResult(
                entity_view(git, one.snapshot, "draft", one.commit, published_commit(repo, key)),
                created=not existed[key],
                changed=True,
                warnings=warnings.get(key, ()),
            )
            for key, one in final.items()
        }
        return [results.get(c.key) or unchanged(c.key) for c in changes]


def roll_forward_drafts(repo: ContentRepository) -> bool:
    """Finish a batch whose commit on `draft` landed but whose entity refs or index rows did
    not, or a fold whose index rows did not (a crash between the two). Idempotent; True if it
    did work."""
    git = repo.storage.git
    head = read_ref(git, DRAFT)
    if head is None or repo.index.records_draft_head(str(head)):
        return False
    with repo.storage.drafts_lock.held():
        listed = {k: pygit2.Oid(hex=sha) for k, sha in newest_batch(repo, head).items()}
        moves = {}
        for key, commit in listed.items():
            ref = read_ref(git, draft_ref(key))
            if ref is None or (ref != commit and git.descendant_of(commit, ref)):
                moves[draft_ref(key)] = commit
        update_refs(git, moves)
        # The index still names each entity's commit before the batch; a batch may have made
        # more than one version of an entity, and each belongs in the activity log.
        before = repo.index.draft_commits()
        rows, logged = [], []
        for key, commit in listed.items():
            rows.append(index_rows(git, key, commit))
            logged += changes_back_to(git, key, commit, stop_at=before.get(key))
        repo.index.record_drafts(rows, logged, draft_head=str(head))
        folded = [tuple(entry.split(" ", 1)) for entry in parse_repeated(git[head].message, "Folded")]
        if folded:
            repo.index.record_fold(str(head), folded)  # type: ignore[arg-type]
    return bool(listed) or bool(folded)


def index_rows(git: pygit2.Repository, key: str, commit: pygit2.Oid) -> DraftRow:
    """What the index records for draft commit `commit` of `key`."""
    snap = load_snapshot(git, commit)
    return draft_row(key, snap.document, commit, snap.tree, snap.deleted, snap.version)


def changes_back_to(git: pygit2.Repository, key: str, tip: pygit2.Oid, *, stop_at: str | None) -> list[ChangeRow]:
    """The activity log's rows for `key`'s commits from `tip` back to `stop_at` (exclusive;
    None: the first), newest first. Read from commits alone, never their files."""
    changes = []
    oid: pygit2.Oid | None = tip
    while oid is not None and str(oid) != stop_at:
        commit = git[oid]
        trailers = parse_trailers(commit.message)
        version = int(trailers.get("Version", "0"))
        author = commit.author
        changes.append(
            ChangeRow(key, version, str(oid), trailers.get("Action", ""), author.name, author.email, author.time)
        )
        oid = commit.parent_ids[0] if commit.parent_ids else None
    return changes


def draft_row(key: str, doc: Content, commit: pygit2.Oid, tree: pygit2.Oid, deleted: bool, version: int) -> DraftRow:
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
class _Made:
    """An entity commit written for a planned change, not yet on any ref."""

    commit: pygit2.Oid
    snapshot: Snapshot  # what reading the commit back would give
    row: DraftRow
    logged: ChangeRow


def _commit_change(
    repo: ContentRepository,
    planned: _Planned,
    sig: pygit2.Signature,
    action: str | None,
    summary: str | None,
    extra_trailers: Sequence[tuple[str, str]],
    *,
    resolve: Callable[[str], pygit2.Oid | None],
) -> _Made:
    """Write (but point no ref at) the entity commit of one planned change."""
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
    locks = _manifest_locks(current, doc, deleted, partial(_with_content, git, resolve))
    message = format_message(summary, trailers + locks)
    commit = write_commit(git, sig, message, tree, [planned.tip] if planned.tip else [])
    author = Author(sig.name, sig.email)
    snap = Snapshot(commit, tree, key, doc, deleted, version, edition, verb, message, author, commit_time(sig))
    return _Made(
        commit,
        snap,
        draft_row(key, doc, commit, tree, deleted, version),
        ChangeRow(key, version, str(commit), verb, sig.name, sig.email, sig.time),
    )


def _same_work(key: str, live: Snapshot, doc: Content, deleted: bool, tree: pygit2.Oid) -> bool:
    """Whether `doc` is the live content, an unpublishing notice aside. Seed 001: the
    user-facing version stays the same as an item moves between states (withdrawn, republished);
    only new work on the content raises it."""
    if live.tree == tree:
        return True
    if deleted or live.deleted or (doc.unpublishing is None and live.document.unpublishing is None):
        return False
    plain = document_to_files(key, doc._replace(unpublishing=None))
    return plain == document_to_files(key, live.document._replace(unpublishing=None))


def _manifest_locks(
    current: Snapshot | None, doc: Content, deleted: bool, resolve: Callable[[str], pygit2.Oid | None]
) -> list[tuple[str, str]]:
    """Seed 004's member lists, recorded in the commit that makes a container version:
    `Initial` pins every member of the new version to the commit it resolves to now (never
    changes afterwards), and `Frozen` records what the previous version's members resolved to
    at this moment. They live in the message, not the tree, so a version's tree is exactly its
    content: restoring it gives back the same tree id, and a no-op write stays a no-op."""
    locks = []
    if doc.members is not None and not deleted:
        locks += [("Initial", f"{m.key} {m.pin or _resolved(m.key, resolve)}") for m in doc.members]
    if current is not None and current.document.members is not None and not current.deleted:
        locks += [("Frozen", f"{m.key} {m.pin or _resolved(m.key, resolve)}") for m in current.document.members]
    return locks


def _with_content(git: pygit2.Repository, resolve: Callable[[str], pygit2.Oid | None], key: str) -> pygit2.Oid | None:
    """What `key` resolves to for a member list: its newest version with content. A member is
    deleted only in the batch that takes it out of this very manifest, and the version being
    frozen showed what the member held before the delete, never its tombstone."""
    oid = resolve(key)
    while oid is not None and load_snapshot(git, oid).deleted:
        parents = git[oid].parent_ids
        oid = parents[0] if parents else None
    return oid


def _resolved(key: str, resolve: Callable[[str], pygit2.Oid | None]) -> str:
    oid = resolve(key)
    if oid is None:
        raise InvalidDocument(
            f"member {key!r} is not an entity of this repository",
            errors=[{"loc": ["members"], "msg": f"unknown entity {key!r}"}],
        )
    return str(oid)


def _tip_of(repo: ContentRepository, key: str) -> pygit2.Oid | None:
    try:
        return draft_tip(repo, key)
    except EntityNotFound:
        return None


def _check_draft_uniqueness(repo: ContentRepository, plans: Sequence[_Planned]) -> dict[str, str]:
    """Among drafts (seed 002), checked under the drafts lock: a base_path has one holder, and
    a document (content_id) has one translation per locale. A placeholder (a `redirect` or
    `gone` entity, or one unpublished as such) gives its path up: returns those to delete in
    the same batch (holder -> the key taking its path)."""
    git = repo.storage.git
    moving = {p.key: p for p in plans}
    paths: dict[str, str] = {}
    translations: dict[tuple[str, str], str] = {}
    displace: dict[str, str] = {}
    for p in plans:
        if p.deleted:
            continue
        path = p.doc.base_path
        if path is not None:
            holder = paths.get(path) or repo.index.draft_holder(path, other_than=p.key)
            if holder is not None and holder not in paths.values() and _leaves(moving.get(holder), path=path):
                holder = None  # that draft leaves the path in this same batch
            if holder is not None and holder not in moving and _is_placeholder_draft(git, holder):
                displace[holder] = p.key
                holder = None
            if holder is not None:
                raise BasePathTaken(
                    f"base_path {path!r} is held by the draft of {holder!r}", holder=holder, base_path=path
                )
            paths[path] = p.key
        document = (document_id(p.key, p.doc), p.doc.locale)
        holder = translations.get(document) or repo.index.translation_holder(*document, other_than=p.key)
        if (
            holder is not None
            and holder not in translations.values()
            and _leaves(moving.get(holder), document=document)
        ):
            holder = None
        if holder is not None:
            raise TranslationTaken(
                f"{holder!r} is already the {document[1]!r} translation of document {document[0]!r}",
                holder=holder,
                content_id=document[0],
                locale=document[1],
            )
        translations[document] = p.key
    return displace


def _is_placeholder_draft(git: pygit2.Repository, key: str) -> bool:
    tip = read_ref(git, draft_ref(key))
    return tip is not None and is_placeholder(load_snapshot(git, tip).document)


def _tombstone(current: Snapshot | None) -> tuple[Content, bool]:
    assert current is not None
    return current.document, True


def _leaves(plan: _Planned | None, *, path: str | None = None, document: tuple[str, str] | None = None) -> bool:
    """Whether a change in the same batch moves its entity away from `path` or `document`."""
    return plan is not None and leaves(plan.key, plan.doc, plan.deleted, base_path=path, document=document)


def _live_path_warnings(repo: ContentRepository, plans: Sequence[_Planned]) -> dict[str, tuple[str, ...]]:
    """A draft may sit at a path another entity holds live (seed 002); say so, because
    publishing it will be refused until the holder leaves, unless the holder is a placeholder."""
    wanted = {p.doc.base_path: p.key for p in plans if p.doc.base_path is not None and not p.deleted}
    warnings: dict[str, tuple[str, ...]] = {}
    git = repo.storage.git
    for path, holder in repo.index.live_holders(list(wanted)).items():
        key = wanted[path]
        if holder == key:
            continue
        live = published_commit(repo, holder)
        if live is not None and is_placeholder(load_snapshot(git, live).document):
            warnings[key] = (f"base_path {path!r} is live on the placeholder {holder!r}; publishing this replaces it",)
        else:
            warnings[key] = (
                f"base_path {path!r} is live on {holder!r}: publishing this draft is refused until it leaves",
            )
    return warnings


def _plan(git: pygit2.Repository, key: str, tip: pygit2.Oid | None, change: Change, expected: Precondition) -> _Planned:
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
    return _Planned(key, tip, current, doc, deleted, tree)


def _aggregate_commit(
    git: pygit2.Repository,
    trees: dict[str, pygit2.Oid | None],
    sig: pygit2.Signature,
    message: str,
) -> tuple[pygit2.Oid | None, pygit2.Oid]:
    """Write (but do not yet point `draft` at) the aggregate commit for one change or batch."""
    head = read_ref(git, DRAFT)
    root = git[head].tree if head is not None else None
    new_root = update_aggregate(git, root, trees)
    return head, git.create_commit(None, sig, sig, message, new_root, [head] if head else [])


def _check_precondition_format(expected: Precondition) -> None:
    if isinstance(expected, IfMatch) and not _SHA.fullmatch(expected.commit):
        raise InvalidInput(
            "a precondition names a full commit id: 40 lower-case hex digits",
            errors=[{"loc": ["If-Match"], "msg": "not a 40-hex commit id"}],
        )


def _summary(verb: str, key: str, current: Snapshot | None, doc: Content) -> str:
    if verb == "create":
        return f"Create {key}"
    if verb == "delete":
        return f"Delete {key}"
    parts = changed_parts(current.document if current else None, doc)
    return f"Update {key}: {', '.join(parts)}" if parts else f"Update {key}"


def _find_version(
    repo: ContentRepository, key: str, tip: pygit2.Oid, *, version: int | None, commit: str | None
) -> pygit2.Oid:
    git = repo.storage.git
    if commit is not None:
        if not _SHA.fullmatch(commit):
            raise InvalidInput(
                "commit must be a full commit id: 40 lower-case hex digits",
                errors=[{"loc": ["commit"], "msg": "not a 40-hex commit id"}],
            )
        oid = pygit2.Oid(hex=commit)
        if oid == tip or (oid in git and isinstance(git[oid], pygit2.Commit) and git.descendant_of(tip, oid)):
            return oid
        raise VersionNotFound(f"{commit} is not a version of {key!r}", key=key)
    if version is None:
        raise InvalidInput("name a version or a commit", errors=[{"loc": ["version"], "msg": "missing"}])
    if version < 1:
        raise VersionNotFound(f"{key!r} has no version {version}", key=key)
    sha = repo.index.commit_of_version(key, version)
    if sha is not None:
        return pygit2.Oid(hex=sha)
    # The index lags (a crash, or a reindex in progress): walk back from the tip.
    oid: pygit2.Oid | None = tip
    while oid is not None:
        snap = load_snapshot(git, oid)
        if snap.version == version:
            return oid
        if snap.version < version:
            break
        parents = git[oid].parent_ids
        oid = parents[0] if parents else None
    raise VersionNotFound(f"{key!r} has no version {version}", key=key)


def entity_view(
    git: pygit2.Repository,
    snap: Snapshot,
    state: str,
    tip: pygit2.Oid | None,
    published: pygit2.Oid | None,
) -> Entity:
    if published is not None:
        unpublished = tip is not None and git[published].tree_id != git[tip].tree_id
    else:
        # Never live: there is something to publish unless the draft is a tombstone.
        tip_deleted = snap.deleted if tip == snap.commit else tip is None or load_snapshot(git, tip).deleted
        unpublished = not tip_deleted
    doc = snap.document
    return Entity(
        key=snap.key,
        type=doc.type,
        title=doc.title,
        locale=doc.locale,
        content_id=document_id(snap.key, doc),
        base_path=doc.base_path,
        fields=doc.fields,
        links=doc.links,
        members=doc.members,
        version=snap.version,
        edition=snap.edition,
        commit=str(snap.commit),
        state=state,
        published_commit=str(published) if published is not None else None,
        has_unpublished_changes=unpublished,
        deleted=snap.deleted,
        author=snap.author,
        updated_at=snap.at,
        unpublishing=doc.unpublishing,
    )

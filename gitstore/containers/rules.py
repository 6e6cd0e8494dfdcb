"""The rules a container's manifest must follow, checked on every write that sets one.

Called with the drafts lock held, so the member drafts it reads are the ones the write
lands beside: two writers cannot each add the other and make a cycle.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from gitstore.containers.types import ContainerType, allows, container_type
from gitstore.entities.api import (
    Content,
    DraftRule,
    Member,
    Planned,
    Resolve,
    Snapshot,
    draft_tip,
    load_snapshot,
    pin_resolver,
    published_commit,
)
from gitstore.errors import Conflict, EntityNotFound, InvalidDocument
from gitstore.repository import ContentRepository
from gitstore.storage.api import CommitId, GitHandle, first_parent, has_object, is_ancestor, is_commit

__all__ = ["Manifests", "check_manifest", "check_member_type", "member_snapshot", "refuse_breaking_rules"]


def check_manifest(repo: ContentRepository, key: str, doc: Content, current: Content | None = None) -> None:
    """Raise InvalidDocument listing every problem with `doc`'s members: unknown or deleted
    members, pins that are not commits of the member's own draft branch, member types the
    container's type does not allow, and cycles (in draft or through pins).

    Given the `current` draft, only the rows `doc` adds to it are checked, unless the type
    changes: the rows it keeps passed these checks when they were added, and nothing since can
    have broken them (a member's delete takes it out of its containers, its retype and a
    change of the type registry are refused if a container would break, a pin names a commit
    that never changes). Writing an unchanged manifest costs no read of its members."""
    if doc.members is None:
        return
    kind = container_type(repo, doc.type)
    if not kind.holds_members:
        raise InvalidDocument(
            f"type {doc.type!r} holds no members; register it as a container type to give it some",
            errors=[{"loc": ["members"], "msg": f"type {doc.type!r} is a leaf"}],
        )
    kept = set()
    if current is not None and current.type == doc.type:
        kept = {(m.key, m.pin) for m in current.members or ()}
    cycles = _CycleCheck(repo, key)
    problems: list[dict[str, Any]] = []
    for position, member in enumerate(doc.members):
        if (member.key, member.pin) not in kept:
            problems += _member_problems(repo, key, doc.type, kind, ["members", position], member, cycles)
    if problems:
        raise InvalidDocument(f"the members of {key!r} break {len(problems)} rule(s)", errors=problems)


def _member_problems(
    repo: ContentRepository,
    key: str,
    type_name: str,
    kind: ContainerType,
    loc: list[Any],
    member: Member,
    cycles: _CycleCheck,
) -> list[dict[str, Any]]:
    """What is wrong with one row of `key`'s manifest."""
    if member.key == key:
        return [{"loc": loc, "msg": f"{key!r} cannot contain itself"}]
    try:
        snap = member_snapshot(repo, member)
    except (EntityNotFound, _BadPin) as exc:
        return [{"loc": [*loc, "pin" if isinstance(exc, _BadPin) else "key"], "msg": str(exc)}]
    problems = []
    if not allows(kind, snap.document.type):
        allowed = ", ".join(kind.allowed_member_types or ())
        problems.append({"loc": loc, "msg": f"a {type_name} holds {allowed}; {member.key!r} is a {snap.document.type}"})
    path = cycles.path(member, snap)
    if path is not None:
        problems.append({"loc": loc, "msg": "a cycle: " + " > ".join([key, member.key, *path, key])})
    return problems


class Manifests(DraftRule):
    """Containers' part of every draft write: a manifest's rules, a retyped member's fit in the
    containers that follow it, and the `Initial` and `Frozen` member lists in the commit."""

    def reads_others(self, planned: Planned) -> bool:
        retyped = planned.current is not None and planned.current.document.type != planned.doc.type
        return planned.doc.members is not None or retyped

    def check(self, repo: ContentRepository, planned: Planned) -> None:
        current = planned.current
        check_manifest(repo, planned.key, planned.doc, None if current is None or current.deleted else current.document)
        check_member_type(repo, planned.key, planned.doc)

    def trailers(self, repo: ContentRepository, planned: Planned, resolve: Resolve) -> list[tuple[str, str]]:
        # Both lists name every member (ADR 0002), mostly the same ones: each is resolved once.
        resolved = cache(partial(_with_content, repo.storage.git, resolve))
        return _manifest_locks(planned.current, planned.doc, planned.deleted, resolved)


def _manifest_locks(current: Snapshot | None, doc: Content, deleted: bool, resolve: Resolve) -> list[tuple[str, str]]:
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


def _with_content(git: GitHandle, resolve: Resolve, key: str) -> CommitId | None:
    """What `key` resolves to for a member list: its newest version with content. A member is
    deleted only in the batch that takes it out of this very manifest, and the version being
    frozen showed what the member held before the delete, never its tombstone."""
    oid = resolve(key)
    while oid is not None and load_snapshot(git, oid).deleted:
        oid = first_parent(git, oid)
    return oid


def _resolved(key: str, resolve: Resolve) -> str:
    oid = resolve(key)
    if oid is None:
        raise InvalidDocument(
            f"member {key!r} is not an entity of this repository",
            errors=[{"loc": ["members"], "msg": f"unknown entity {key!r}"}],
        )
    return str(oid)


def check_member_type(repo: ContentRepository, key: str, doc: Content) -> None:
    """A change of `key`'s type must suit every container that follows it (names it unpinned),
    in draft and live: otherwise the container could no longer be written, and publishing the
    member would put a type its container does not allow into the live tree. Raise
    InvalidDocument naming each such container (`extra["containers"]`)."""
    usages = [u for u in repo.index.usages(key) if u.container != key]
    if not usages or load_snapshot(repo.storage.git, draft_tip(repo, key)).document.type == doc.type:
        return
    problems: list[dict[str, Any]] = []
    broken: set[str] = set()
    for usage in usages:
        holder = _holder(repo, usage.container, usage.view)
        if holder is None or not any(m.key == key and m.pin is None for m in holder.document.members or ()):
            continue
        kind = container_type(repo, holder.document.type)
        if not allows(kind, doc.type):
            shown = "the live " if usage.view == "live" else "the "
            msg = f"{shown}{holder.document.type} {usage.container!r} holds {_allowed(kind)}; it would hold {key!r}, a {doc.type}"
            problems.append({"loc": ["type"], "msg": msg})
            broken.add(usage.container)
    if problems:
        raise InvalidDocument(
            f"{key!r} cannot become a {doc.type}: {len(broken)} container(s) that hold it do not allow that",
            errors=problems,
            containers=sorted(broken),
        )


def refuse_breaking_rules(repo: ContentRepository, kind: ContainerType) -> None:
    """A registry change must not break existing containers of that type (draft or live): it
    is refused, naming them (`extra["containers"]`), rather than leaving containers that can no
    longer be written or exported and imported again. Change or publish them first."""
    git = repo.storage.git
    broken: set[str] = set()
    for usage in repo.index.containers_of_type(kind.name):
        holder = _holder(repo, usage.container, usage.view)
        if holder is None or holder.document.type != kind.name or usage.container in broken:
            continue
        for member in holder.document.members or ():
            if member.pin is not None:
                oid: CommitId | None = pin_resolver(git)(member.pin)
            elif usage.view == "draft":
                oid = draft_tip(repo, member.key)
            else:
                oid = published_commit(repo, member.key)
            snap = load_snapshot(git, oid) if oid is not None and has_object(git, oid) else None
            if snap is not None and not snap.deleted and not allows(kind, snap.document.type):
                broken.add(usage.container)
                break
    if broken:
        shown = ", ".join(sorted(broken)[:10]) + (f" and {len(broken) - 10} more" if len(broken) > 10 else "")
        raise Conflict(
            f"a {kind.name} holding {_allowed(kind)} would break {len(broken)} existing container(s): {shown}; "
            "change their members first",
            containers=sorted(broken),
        )


def _holder(repo: ContentRepository, key: str, view: str) -> Snapshot | None:
    """`key`'s draft (view "draft") or live version, unless it is a delete."""
    commit = draft_tip(repo, key) if view == "draft" else published_commit(repo, key)
    snap = load_snapshot(repo.storage.git, commit) if commit is not None else None
    return None if snap is None or snap.deleted else snap


def _allowed(kind: ContainerType) -> str:
    return ", ".join(kind.allowed_member_types or ()) or "nothing"


class _BadPin(Exception):
    pass


def member_snapshot(repo: ContentRepository, member: Member) -> Snapshot:
    """What `member` resolves to in the draft view: its pinned commit, or its draft tip.

    Raises EntityNotFound for an unknown or deleted member, _BadPin for a pin that is not a
    commit of the member's draft branch. The pin is looked up as an object id and checked by
    ancestry; it never goes near revparse, so `HEAD~1` or a ref name cannot sneak in.
    """
    git = repo.storage.git
    tip = draft_tip(repo, member.key)
    if member.pin is None:
        snap = load_snapshot(git, tip)
        if snap.deleted:
            raise EntityNotFound(f"{member.key!r} is deleted in draft")
        return snap
    oid = pin_resolver(git)(member.pin)
    if not (is_commit(git, oid) and is_ancestor(git, oid, tip)):
        raise _BadPin(f"{member.pin} is not a commit on the draft branch of {member.key!r}")
    snap = load_snapshot(git, oid)
    if snap.deleted:
        raise _BadPin(f"{member.pin} is the delete of {member.key!r}; pin a version with content")
    return snap


class _CycleCheck:
    """Whether a member added to `key`'s manifest closes a cycle, asked from above.

    Adding member M to container C closes a cycle iff what M resolves to holds C at some depth.
    Walking down M's subtree answers that at the cost of the subtree (a section: hundreds of
    reads). Walking up from C costs what is above C, which is shallow: the index's draft
    manifests name every container that holds C, and those that hold them, in one query. If M
    is not among them, M's draft cannot reach C through drafts alone.

    A pin is the one way down the index cannot follow: it leads to an old version, whose
    manifest only git knows. A path from M's draft into a pinned version passes through a
    container whose draft pins, so the walk up starts from those containers too. When M is
    above C or above one of them, or M itself is pinned, the walk down decides, as it always
    did: the walk up only skips it where it cannot be a cycle. Runs once per write, on first need.
    """

    def __init__(self, repo: ContentRepository, key: str) -> None:
        self._repo, self._key = repo, key
        self._above: set[str] | None = None

    def path(self, member: Member, snap: Snapshot) -> list[str] | None:
        """The keys leading from `member` (exclusive) down to `key`, if adding it closes a cycle."""
        if member.pin is None and member.key not in self._keys_above():
            return None
        return _path_back_to(self._repo, self._key, snap)

    def _keys_above(self) -> set[str]:
        if self._above is None:
            index = self._repo.index
            self._above = index.holders_above(sorted({self._key} | index.pinning("draft")), "draft")
        return self._above


def _path_back_to(repo: ContentRepository, key: str, start: Snapshot) -> list[str] | None:
    """The keys leading from `start` (exclusive) down to a member `key`, if there is one."""
    seen: set[CommitId] = set()
    stack: list[tuple[Snapshot, list[str]]] = [(start, [])]
    while stack:
        snap, path = stack.pop()
        if snap.commit in seen or snap.document.members is None:
            continue
        seen.add(snap.commit)
        for member in snap.document.members:
            if member.key == key:
                return path
            try:
                child = member_snapshot(repo, member)
            except (EntityNotFound, _BadPin):
                continue
            stack.append((child, [*path, member.key]))
    return None

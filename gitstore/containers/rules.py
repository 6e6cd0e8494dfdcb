"""The rules a container's manifest must follow, checked on every write that sets one.

Called with the drafts lock held, so the member drafts it reads are the ones the write
lands beside: two writers cannot each add the other and make a cycle.
"""

from __future__ import annotations

from typing import Any

import pygit2

from gitstore.containers.types import allows, container_type
from gitstore.entities.document import Content, Member
from gitstore.entities.erasures import pin_resolver
from gitstore.entities.snapshots import Snapshot, draft_tip, load_snapshot
from gitstore.errors import EntityNotFound, InvalidDocument
from gitstore.repository import ContentRepository

__all__ = ["check_manifest", "member_snapshot"]


def check_manifest(repo: ContentRepository, key: str, doc: Content) -> None:
    """Raise InvalidDocument listing every problem with `doc`'s members: unknown or deleted
    members, pins that are not commits of the member's own draft branch, member types the
    container's type does not allow, and cycles (in draft or through pins)."""
    if doc.members is None:
        return
    kind = container_type(repo, doc.type)
    if not kind.holds_members:
        raise InvalidDocument(
            f"type {doc.type!r} holds no members; register it as a container type to give it some",
            errors=[{"loc": ["members"], "msg": f"type {doc.type!r} is a leaf"}],
        )
    problems: list[dict[str, Any]] = []
    for position, member in enumerate(doc.members):
        loc = ["members", position]
        if member.key == key:
            problems.append({"loc": loc, "msg": f"{key!r} cannot contain itself"})
            continue
        try:
            snap = member_snapshot(repo, member)
        except (EntityNotFound, _BadPin) as exc:
            problems.append({"loc": [*loc, "pin" if isinstance(exc, _BadPin) else "key"], "msg": str(exc)})
            continue
        if not allows(kind, snap.document.type):
            allowed = ", ".join(kind.allowed_member_types or ())
            problems.append(
                {"loc": loc, "msg": f"a {doc.type} holds {allowed}; {member.key!r} is a {snap.document.type}"}
            )
        path = _path_back_to(repo, key, snap)
        if path is not None:
            problems.append({"loc": loc, "msg": "a cycle: " + " > ".join([key, member.key, *path, key])})
    if problems:
        raise InvalidDocument(f"the members of {key!r} break {len(problems)} rule(s)", errors=problems)


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
    obj = git.get(oid)
    if not isinstance(obj, pygit2.Commit) or not (oid == tip or git.descendant_of(tip, oid)):
        raise _BadPin(f"{member.pin} is not a commit on the draft branch of {member.key!r}")
    snap = load_snapshot(git, oid)
    if snap.deleted:
        raise _BadPin(f"{member.pin} is the delete of {member.key!r}; pin a version with content")
    return snap


def _path_back_to(repo: ContentRepository, key: str, start: Snapshot) -> list[str] | None:
    """The keys leading from `start` (exclusive) down to a member `key`, if there is one."""
    seen: set[pygit2.Oid] = set()
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

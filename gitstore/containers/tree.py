"""Resolve a container into the nested tree of what it holds, in one view.

Unpinned members resolve to their draft (draft view) or to what is live (published view,
now or as of a past publish); pinned members to the pinned commit in every view. Members
that are deleted, or not live in a live view, are left out. A live view also leaves out what
expanded links leave out (members unpublished as gone, redirect or vanish, and placeholders);
every node carries its unpublishing notice, so a withdrawn member shows why. The walk goes level by level so
each level's unpinned members are looked up in one index query rather than ref by ref.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gitstore.entities.api import (
    Member,
    Snapshot,
    Unpublishing,
    draft_tip,
    load_snapshot,
    pin_resolver,
    placeholder_kind,
    published_commit,
)
from gitstore.errors import Conflict, EntityNotFound
from gitstore.index.api import EntityState
from gitstore.names import validate_key
from gitstore.repository import DRAFT, MAIN, ContentRepository
from gitstore.storage.api import CommitId, commit_id, read_ref

__all__ = ["TreeNode", "View", "resolve_tree", "walk"]

# Deeper than any real hierarchy by far; beyond it a request is refused rather than recursing.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class TreeNode:
    key: str
    type: str
    title: str
    commit: str
    version: int
    pinned: bool
    # The draft of anything in this subtree differs from what is live: publishing this node
    # would change what readers see.
    contains_unpublished_changes: bool
    members: list[TreeNode] | None  # None for an entity that is not a container
    unpublishing: Unpublishing | None = None  # how this version was taken down, if it was


@dataclass(frozen=True, slots=True)
class View:
    """Which commit an unpinned member resolves to: "draft", "published", or "published" as
    of publish number `publish_seq`."""

    state: str = "draft"
    publish_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Walked:
    """A container tree as read: every snapshot reached, and each manifest row resolved."""

    root: Snapshot
    snapshots: dict[CommitId, Snapshot]
    unpinned: dict[str, CommitId]  # key -> the commit it resolves to in this view
    states: dict[str, EntityState]  # what the index said of the keys it was asked about
    pinned: Callable[[str], CommitId]  # a pin's commit (gitstore.entities.erasures)

    def member_commit(self, member: Member) -> CommitId | None:
        """The commit a manifest row resolves to in this view, or None (not in it)."""
        return self.pinned(member.pin) if member.pin else self.unpinned.get(member.key)


def resolve_tree(repo: ContentRepository, key: str, view: View) -> TreeNode:
    """The resolved tree under `key` in `view`.

    Raises:
        EntityNotFound: `key` has nothing in that view.
        InvalidName: `key` is not an entity key.
    """
    validate_key(key)
    root = _lookup(repo, view, [key], {}).get(key)
    if root is None:
        raise EntityNotFound(f"{key!r} has no {view.state} version", key=key)
    snap = load_snapshot(repo.storage.git, root)
    if snap.deleted:
        raise EntityNotFound(f"{key!r} is deleted in that view", key=key)
    walked = walk(repo, snap, view)
    changed = _changes(repo, walked)
    return _build(walked, walked.root, pinned=False, changed=changed, path=(), live=view.state != "draft")


def walk(repo: ContentRepository, root: Snapshot, view: View) -> Walked:
    """Read every snapshot under `root` in `view`, one level at a time."""
    git = repo.storage.git
    pinned = pin_resolver(git)
    snapshots = {root.commit: root}
    unpinned: dict[str, CommitId] = {}
    states: dict[str, EntityState] = {}
    frontier = [root]
    depth = 0
    while frontier:
        depth += 1
        if depth > MAX_DEPTH:
            raise Conflict(f"containers nest deeper than {MAX_DEPTH} levels under {root.key!r}")
        wanted = {m.key for s in frontier for m in s.document.members or () if m.pin is None} - unpinned.keys()
        unpinned.update(_lookup(repo, view, sorted(wanted), states))
        next_level = []
        for snap in frontier:
            for member in snap.document.members or ():
                oid = pinned(member.pin) if member.pin else unpinned.get(member.key)
                if oid is None or oid in snapshots:
                    continue
                child = load_snapshot(git, oid)
                snapshots[oid] = child
                next_level.append(child)
        frontier = next_level
    return Walked(root, snapshots, unpinned, states, pinned)


def children(walked: Walked, snap: Snapshot) -> Iterable[tuple[Snapshot, bool]]:
    """`snap`'s members as resolved in the walk, in manifest order: (snapshot, pinned)."""
    for member in snap.document.members or ():
        oid = walked.member_commit(member)
        if oid is None:
            continue
        child = walked.snapshots[oid]
        if not child.deleted:
            yield child, member.pin is not None


def _build(
    walked: Walked,
    snap: Snapshot,
    *,
    pinned: bool,
    changed: dict[tuple[CommitId, bool], bool],
    path: tuple[str, ...],
    live: bool,
) -> TreeNode:
    members = None
    below = False
    if snap.document.members is not None:
        members = []
        for child, child_pinned in children(walked, snap):
            if child.key in path or child.key == snap.key:
                continue  # a cycle the write rules would have refused; never loop on it
            node = _build(walked, child, pinned=child_pinned, changed=changed, path=(*path, snap.key), live=live)
            below = below or node.contains_unpublished_changes
            if live and _taken_down(child):
                continue  # readers are not shown it, as expanded links do not show it
            members.append(node)
    doc = snap.document
    return TreeNode(
        key=snap.key,
        type=doc.type,
        title=doc.title,
        commit=str(snap.commit),
        version=snap.version,
        pinned=pinned,
        contains_unpublished_changes=below or changed[(snap.commit, pinned)],
        members=members,
        unpublishing=doc.unpublishing,
    )


def _taken_down(snap: Snapshot) -> bool:
    notice = snap.document.unpublishing
    return placeholder_kind(snap.document.type, notice.type if notice is not None else None)


def _changes(repo: ContentRepository, walked: Walked) -> dict[tuple[CommitId, bool], bool]:
    """Whether each node itself would change on publish, compared by tree id (never by content):
    an unpinned node if its draft tree is not its live tree, a pinned one if its commit was
    never live."""
    nodes: set[tuple[CommitId, bool]] = {(walked.root.commit, False)}
    for snap in walked.snapshots.values():
        for member in snap.document.members or ():
            oid = walked.member_commit(member)
            if oid is not None:
                nodes.add((oid, member.pin is not None))
    states = walked.states
    missing = sorted({walked.snapshots[oid].key for oid, _ in nodes} - states.keys())
    states = {**states, **repo.index.states(missing)} if missing else states
    ever = repo.index.ever_published(sorted({str(oid) for oid, pinned in nodes if pinned}))
    changed: dict[tuple[CommitId, bool], bool] = {}
    for oid, pinned in nodes:
        if pinned:
            changed[(oid, pinned)] = str(oid) not in ever
            continue
        state = states.get(walked.snapshots[oid].key)
        if state is None:
            changed[(oid, pinned)] = True
        elif state.live_tree is None:
            changed[(oid, pinned)] = not state.draft_deleted
        else:
            changed[(oid, pinned)] = state.draft_tree != state.live_tree
    return changed


def _lookup(
    repo: ContentRepository, view: View, keys: list[str], states: dict[str, EntityState]
) -> dict[str, CommitId]:
    """key -> the commit each resolves to unpinned in `view`; keys with none are left out.
    What the index says of each key is added to `states`."""
    if not keys:
        return {}
    git = repo.storage.git
    index = repo.index
    if view.publish_seq is not None:
        found: dict[str, CommitId] = {}
        for key in keys:
            row = index.published_as_of(key, view.publish_seq)
            if row is not None:
                found[key] = commit_id(row[0])
        return found
    if view.state == "draft":
        # The index answers for a whole level at once when it is in step with `draft`;
        # otherwise (a write between two of its steps) ask the refs one by one.
        if index.meta("draft_head") == str(read_ref(git, DRAFT)):
            found_states = index.states(keys)
            states.update(found_states)
            return {k: commit_id(s.draft_commit) for k, s in found_states.items()}
        found = {}
        for key in keys:
            try:
                found[key] = draft_tip(repo, key)
            except EntityNotFound:
                continue
        return found
    if index.meta("main_head") == str(read_ref(git, MAIN)):
        found_states = index.states(keys)
        states.update(found_states)
        return {k: commit_id(s.published_commit) for k, s in found_states.items() if s.published_commit}
    found = {}
    for key in keys:
        live = published_commit(repo, key)
        if live is not None:
            found[key] = live
    return found

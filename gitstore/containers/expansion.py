"""What publishing a container brings along (seed 004), as a part of every publish
(gitstore.publishing.parts)."""

from __future__ import annotations

from collections.abc import Sequence

from gitstore.containers.tree import View, Walked, walk
from gitstore.entities.api import IfMatch, Snapshot, draft_tip, get_entity, load_snapshot, published_commit
from gitstore.errors import Conflict, NotFastForward, StaleVersion
from gitstore.publishing.api import PublishPart, PublishTarget
from gitstore.repository import ContentRepository
from gitstore.storage.api import CommitId, commit_id, first_parent_history, is_ancestor

__all__ = ["MembersAlong"]


class MembersAlong(PublishPart):
    """Publishing targets publishes what they bring with them, in the same atomic publish:

    - a container brings the drafts of its unpinned members, all the way down (never its
      parents), so its live tree becomes its draft tree;
    - a pinned member whose pinned commit was never live is published at that commit, which
      must then be a fast-forward of what is live (a live container never shows content
      that was never published);
    - a delete brings, for each container whose live manifest still names the entity, the
      first draft version of that container without it (seed 004), and nothing below it.

    Refuses with Conflict a cycle in the live tree it would make (possible only when
    publishing an old container version).
    """

    def expand(self, repo: ContentRepository, targets: list[PublishTarget]) -> list[PublishTarget]:
        return _expand(repo, targets)


def _expand(repo: ContentRepository, targets: Sequence[PublishTarget]) -> list[PublishTarget]:
    """The targets, and what they bring along (see MembersAlong)."""
    git = repo.storage.git
    chosen: dict[str, CommitId] = {}
    expected: dict[str, IfMatch] = {}
    queue: list[tuple[str, CommitId, bool]] = []

    def want(key: str, commit: CommitId, *, cascade: bool = True) -> None:
        have = chosen.get(key)
        if have is not None and is_ancestor(git, commit, have):
            return
        chosen[key] = commit
        queue.append((key, commit, cascade))

    for target in targets:
        if target.expected is not None:
            expected[target.key] = target.expected
        want(target.key, _starting_commit(repo, target))
    while queue:
        key, commit, cascade = queue.pop()
        if chosen[key] != commit:
            continue  # superseded by a newer commit of the same entity
        snap = load_snapshot(git, commit)
        if snap.deleted:
            # Only the containers themselves: the delete's author did not ask to publish
            # their other members' drafts.
            for container, version in _containers_left(repo, key):
                want(container, version, cascade=False)
        elif snap.document.members is not None and cascade:
            # One walk covers the whole subtree: what it brings needs no walk of its own.
            for member_key, member_commit in _brought_along(repo, snap):
                want(member_key, member_commit, cascade=False)
    return [PublishTarget(k, commit=str(c), expected=expected.get(k)) for k, c in sorted(chosen.items())]


def _starting_commit(repo: ContentRepository, target: PublishTarget) -> CommitId:
    """The commit `target` asks for: a version or commit it names, else the draft tip, which
    its If-Match (if any) must name."""
    tip = draft_tip(repo, target.key)
    if target.expected is not None and str(tip) != target.expected.commit:
        raise StaleVersion(f"the draft of {target.key!r} is not at {target.expected.commit}", current=str(tip))
    if target.commit is not None or target.version is not None:
        return commit_id(target.commit or get_entity(repo, target.key, version=target.version).commit)
    return tip


def _brought_along(repo: ContentRepository, container: Snapshot) -> list[tuple[str, CommitId]]:
    """What publishing `container` brings along: its resolved draft subtree, minus pinned
    commits that were live at some point."""
    git = repo.storage.git
    walked = walk(repo, container, View("draft"))
    _refuse_cycles(walked, container)
    pins: list[tuple[str, CommitId, str]] = []
    found: list[tuple[str, CommitId]] = []
    for snap in walked.snapshots.values():
        for member in snap.document.members or ():
            if member.pin is not None:
                pins.append((member.key, walked.pinned(member.pin), snap.key))
            elif member.key in walked.unpinned and not walked.snapshots[walked.unpinned[member.key]].deleted:
                found.append((member.key, walked.unpinned[member.key]))
    ever = repo.index.ever_published(sorted({str(pin) for _, pin, _ in pins}))
    for key, pin, holder in pins:
        if str(pin) in ever:
            continue
        live = published_commit(repo, key)
        if live is not None and not is_ancestor(git, live, pin):
            raise NotFastForward(
                f"{holder!r} pins {key!r} at {pin}, which was never live and is older than the live version; "
                "pin a version that was published, or the draft",
                key=key,
            )
        found.append((key, pin))
    return found


def _refuse_cycles(walked: Walked, root: Snapshot) -> None:
    def visit(snap: Snapshot, path: tuple[str, ...]) -> None:
        for member in snap.document.members or ():
            oid = walked.member_commit(member)
            if oid is None:
                continue
            if member.key in path:
                cycle = " > ".join([*path[path.index(member.key) :], member.key])
                raise Conflict(f"publishing this would make a cycle in the live tree: {cycle}")
            visit(walked.snapshots[oid], (*path, member.key))

    visit(root, (root.key,))


def _containers_left(repo: ContentRepository, key: str) -> list[tuple[str, CommitId]]:
    """For each container whose live manifest names `key`: its first draft version after
    the live one that no longer does."""
    git = repo.storage.git
    found = []
    for usage in repo.index.usages(key):
        if usage.view != "live":
            continue
        live = published_commit(repo, usage.container)
        newer = list(first_parent_history(git, draft_tip(repo, usage.container), stop_at=live))
        for commit in reversed(newer):
            snap = load_snapshot(git, commit)
            members = snap.document.members
            if not snap.deleted and members is not None and all(m.key != key for m in members):
                found.append((usage.container, commit))
                break
    return found

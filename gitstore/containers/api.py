"""Containers (seed 004): entities whose `members` manifest orders other entities, pinned
to a commit or following the latest. This layer adds the rules and the cascades to the
entities, publishing and history layers below; the API calls it for every draft write and
publish so that the rules hold whichever way content arrives.

    put_draft / patch_draft / restore_version / discard_draft / write_from_base
        the lower layers' writes, with the manifest checked under the drafts lock
    delete_entity     a soft delete that also takes the entity out of every container's draft,
                      in the same atomic operation
    publish           publishes each container with its members' drafts, all the way down,
                      and each delete with the containers it left; one atomic publish
    member_list       a version's author-defined, initial or frozen list
    resolve_tree      the resolved nested tree in a view, with contains_unpublished_changes
    where_used        the containers whose draft or live manifest names an entity
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from gitstore.containers import types
from gitstore.containers.rules import check_manifest, check_member_type, refuse_breaking_rules
from gitstore.containers.tree import TreeNode, View, Walked, resolve_tree, walk
from gitstore.containers.types import (
    ContainerType,
    allows,
    container_type,
    container_types,
)
from gitstore.entities import api as entities
from gitstore.entities.api import DraftChange, IfMatch, Precondition
from gitstore.entities.document import Content, Member
from gitstore.entities.erasures import pin_resolver
from gitstore.entities.model import Author, WriteResult
from gitstore.entities.snapshots import Snapshot, draft_tip, load_snapshot, published_commit
from gitstore.entities.trailers import parse_repeated
from gitstore.errors import (
    Conflict,
    EntityNotFound,
    InvalidInput,
    NotAContainer,
    NotFastForward,
    StaleVersion,
)
from gitstore.history import api as history
from gitstore.index.api import Usage
from gitstore.names import validate_key
from gitstore.publishing import api as publishing
from gitstore.publishing.api import PublishNote, PublishRecord, PublishTarget
from gitstore.repository import ContentRepository
from gitstore.storage.api import CommitId, commit_id, commit_message, first_parent_history, is_ancestor

__all__ = [
    "ContainerType",
    "TreeNode",
    "Usage",
    "View",
    "allows",
    "container_type",
    "container_types",
    "delete_entity",
    "discard_draft",
    "member_list",
    "patch_draft",
    "publish",
    "publish_all_drafts",
    "put_draft",
    "resolve_tree",
    "restore_version",
    "set_container_type",
    "tree_as_of",
    "where_used",
    "write_from_base",
]

LISTS = ("author", "initial", "frozen")


# -- draft writes -----------------------------------------------------------------------------


def _rules(repo: ContentRepository, kwargs: dict[str, Any]) -> entities.Check:
    """The manifest rules, then any rule a layer above passes as `check`."""
    above: entities.Check | None = kwargs.pop("check", None)

    def check(key: str, doc: Content) -> None:
        check_manifest(repo, key, doc)
        check_member_type(repo, key, doc)
        if above is not None:
            above(key, doc)

    return check


def set_container_type(
    repo: ContentRepository, name: str, allowed_member_types: list[str] | None, *, author: Author
) -> ContainerType:
    """types.set_container_type, refused (Conflict naming them) if existing containers break."""
    return types.set_container_type(
        repo, name, allowed_member_types, author=author, check=lambda kind: refuse_breaking_rules(repo, kind)
    )


def put_draft(repo: ContentRepository, key: str, document: Any, **kwargs: Any) -> WriteResult:
    return entities.put_draft(repo, key, document, check=_rules(repo, kwargs), **kwargs)


def patch_draft(repo: ContentRepository, key: str, patch: dict[str, Any], **kwargs: Any) -> WriteResult:
    return entities.patch_draft(repo, key, patch, check=_rules(repo, kwargs), **kwargs)


def restore_version(repo: ContentRepository, key: str, version: int | None = None, **kwargs: Any) -> WriteResult:
    return entities.restore_version(repo, key, version, check=_rules(repo, kwargs), **kwargs)


def discard_draft(repo: ContentRepository, key: str, **kwargs: Any) -> WriteResult:
    return entities.discard_draft(repo, key, check=_rules(repo, kwargs), **kwargs)


def write_from_base(repo: ContentRepository, key: str, base: str, **kwargs: Any) -> WriteResult:
    return history.write_from_base(repo, key, base, check=_rules(repo, kwargs), **kwargs)


def delete_entity(repo: ContentRepository, key: str, *, author: Author, expected: Precondition = None) -> WriteResult:
    """Soft delete `key`, and give every container whose draft names it (pinned or not) a new
    draft version without it (seed 004), all in one atomic batch. Until published, every
    live view is unchanged."""
    validate_key(key)
    with repo.storage.drafts_lock.held():
        entities.roll_forward_drafts(repo)
        holders = sorted({u.container for u in repo.index.usages(key) if u.view == "draft"} - {key})
        if not holders:
            return entities.delete_entity(repo, key, author=author, expected=expected)

        def tombstone(current: Snapshot | None) -> tuple[Content, bool]:
            if current is None or current.deleted:
                raise EntityNotFound(f"no draft of {key!r} to delete", key=key)
            return current.document, True

        def without_member(current: Snapshot | None) -> tuple[Content, bool]:
            assert current is not None and current.document.members is not None
            kept = tuple(m for m in current.document.members if m.key != key)
            return current.document._replace(members=kept), current.deleted

        changes = [DraftChange(key, tombstone, action="delete", expected=expected)]
        changes += [
            DraftChange(c, without_member, action="update", summary=f"Remove {key} from {c}: {key} was deleted")
            for c in holders
        ]
        shown = ", ".join(holders[:5]) + (f" and {len(holders) - 5} more" if len(holders) > 5 else "")
        results = entities.write_drafts(repo, changes, author=author, summary=f"Delete {key}, removing it from {shown}")
    return results[0]


# -- publishing -------------------------------------------------------------------------------


def publish(
    repo: ContentRepository,
    targets: Sequence[PublishTarget],
    *,
    author: Author,
    note: PublishNote | None = None,
    describe: publishing.Describe | None = None,
) -> PublishRecord:
    """Publish `targets` and everything they bring with them, in one atomic publish:

    - a container brings the drafts of its unpinned members, all the way down (never its
      parents), so its live tree becomes its draft tree;
    - a pinned member whose pinned commit was never live is published at that commit, which
      must then be a fast-forward of what is live (a live container never shows content
      that was never published);
    - a delete brings, for each container whose live manifest still names the entity, the
      first draft version of that container without it (seed 004), and nothing below it.

    Raises what publishing.publish raises, and Conflict for a cycle in the live tree it would
    make (possible only when publishing an old container version).
    """
    with repo.storage.publish_lock.held():
        # Expand against one consistent set of drafts: no draft write lands mid-walk.
        with repo.storage.drafts_lock.held():
            entities.roll_forward_drafts(repo)
            expanded = _expand(repo, targets)
        return publishing.publish(repo, expanded, author=author, note=note, describe=describe)


def publish_all_drafts(
    repo: ContentRepository,
    *,
    author: Author,
    note: PublishNote | None = None,
    describe: publishing.Describe | None = None,
) -> PublishRecord:
    with repo.storage.publish_lock.held():
        publishing.roll_forward(repo)
        keys = repo.index.unpublished_keys()
        return publish(repo, [PublishTarget(k) for k in keys], author=author, note=note, describe=describe)


# The publish expansion moves behind the one content surface (issue 19), which splits it; until
# then it is the one function over the complexity bound.
def _expand(repo: ContentRepository, targets: Sequence[PublishTarget]) -> list[PublishTarget]:  # noqa: C901
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
        validate_key(target.key)
        tip = draft_tip(repo, target.key)
        if target.expected is not None:
            if str(tip) != target.expected.commit:
                raise StaleVersion(f"the draft of {target.key!r} is not at {target.expected.commit}", current=str(tip))
            expected[target.key] = target.expected
        if target.commit is not None or target.version is not None:
            sha = target.commit or entities.get_entity(repo, target.key, version=target.version).commit
            want(target.key, commit_id(sha))
        else:
            want(target.key, tip)
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


# -- reads ------------------------------------------------------------------------------------


def member_list(repo: ContentRepository, key: str, *, version: int | None = None, kind: str = "author") -> list[Member]:
    """One of seed 004's lists for a container version (the draft's when `version` is None):
    "author" as written (pins and nulls), "initial" every member pinned as it resolved when
    the version was made, "frozen" as the members resolved when the next version was made.

    Raises:
        NotAContainer: that version has no manifest.
        Conflict: "frozen" of the latest version, which is not frozen until there is a next.
    """
    if kind not in LISTS:
        raise InvalidInput(
            f"list is one of {', '.join(LISTS)}", errors=[{"loc": ["list"], "msg": f"unknown list {kind!r}"}]
        )
    if version is None:
        entity = entities.get_entity(repo, key, state="draft")
    else:
        entity = entities.get_entity(repo, key, version=version)
    git = repo.storage.git
    snap = load_snapshot(git, commit_id(entity.commit))
    if snap.document.members is None or snap.deleted:
        raise NotAContainer(f"version {snap.version} of {key!r} has no members: it is not a container", key=key)
    pinned = pin_resolver(git)
    if kind == "author":
        return [m if m.pin is None else Member(m.key, str(pinned(m.pin))) for m in snap.document.members]
    if kind == "initial":
        return _listed(snap.message, "Initial", pinned)
    following = repo.index.commit_of_version(key, snap.version + 1)
    if following is None:
        raise Conflict(
            f"version {snap.version} is the latest version of {key!r}; its frozen list is recorded "
            "when the next version is made"
        )
    return _listed(commit_message(git, commit_id(following)), "Frozen", pinned)


def _listed(message: str, trailer: str, pinned: Callable[[str], CommitId]) -> list[Member]:
    """A member list a trailer recorded, each commit as it is now (an erasure may have moved it)."""
    listed = (entry.split(" ", 1) for entry in parse_repeated(message, trailer))
    return [Member(key, str(pinned(sha))) for key, sha in listed]


def tree_as_of(repo: ContentRepository, key: str, at: datetime) -> TreeNode:
    """The live tree under `key` just after the last publish made at or before `at`."""
    seq = history.publish_seq_as_of(repo, at)
    if seq is None:
        raise EntityNotFound(f"nothing was live at {at.isoformat()}", key=key)
    return resolve_tree(repo, key, View("published", seq))


def where_used(repo: ContentRepository, key: str) -> list[Usage]:
    """The containers that name `key` in their draft or live manifest, from the index."""
    validate_key(key)
    draft_tip(repo, key)
    return repo.index.usages(key)

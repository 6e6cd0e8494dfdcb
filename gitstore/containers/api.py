"""Containers (seed 004): entities whose `members` manifest orders other entities, pinned
to a commit or following the latest. This layer's rules and cascades plug into the write and
publish paths below it (gitstore.content registers them), so they hold whichever way content
arrives.

    Manifests         the draft write rule: a manifest's members, a retyped member's fit, and
                      the Initial and Frozen member lists recorded in the commit
    MembersAlong      the publish part: a container brings its members' drafts, all the way
                      down, and a delete brings the containers it left
    delete_leaving_containers
                      a soft delete that also takes the entity out of every container's draft,
                      in the same atomic operation (gitstore.content.delete_entity)
    member_list       a version's author-defined, initial or frozen list
    resolve_tree      the resolved nested tree in a view, with contains_unpublished_changes
    where_used        the containers whose draft or live manifest names an entity
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gitstore.containers.expansion import MembersAlong
from gitstore.containers.rules import Manifests, refuse_breaking_rules
from gitstore.containers.tree import TreeNode, View, resolve_tree
from gitstore.containers.types import (
    ContainerType,
    allows,
    container_type,
    container_types,
    set_container_type,
)
from gitstore.entities import api as entities
from gitstore.entities.api import (
    Author,
    Content,
    DraftChange,
    DraftRules,
    Member,
    Precondition,
    Snapshot,
    WriteResult,
    deleting,
    draft_tip,
    holding,
    load_snapshot,
    parse_repeated,
    pin_resolver,
    roll_forward_drafts,
    write_entity_drafts,
    write_tombstone,
)
from gitstore.errors import (
    Conflict,
    EntityNotFound,
    InvalidInput,
    NotAContainer,
)
from gitstore.history import api as history
from gitstore.index.api import Usage
from gitstore.names import validate_key
from gitstore.repository import ContentRepository
from gitstore.storage.api import CommitId, commit_id, commit_message

__all__ = [
    "ContainerType",
    "Manifests",
    "MembersAlong",
    "TreeNode",
    "Usage",
    "View",
    "allows",
    "container_type",
    "container_types",
    "delete_leaving_containers",
    "member_list",
    "refuse_breaking_rules",
    "resolve_tree",
    "set_container_type",
    "tree_as_of",
    "where_used",
]

LISTS = ("author", "initial", "frozen")


# -- deletes ---------------------------------------------------------------------------------


def delete_leaving_containers(
    repo: ContentRepository, key: str, *, rules: DraftRules, author: Author, expected: Precondition = None
) -> WriteResult:
    """Soft delete `key`, and give every container whose draft names it (pinned or not) a new
    draft version without it (seed 004), all in one atomic batch. Until published, every
    live view is unchanged."""
    validate_key(key)
    with holding(repo, "drafts", roll_forward_drafts):
        holders = sorted({u.container for u in repo.index.usages(key) if u.view == "draft"} - {key})
        if not holders:
            return write_tombstone(repo, key, rules=rules, author=author, expected=expected)

        def without_member(current: Snapshot | None) -> tuple[Content, bool]:
            assert current is not None and current.document.members is not None
            kept = tuple(m for m in current.document.members if m.key != key)
            return current.document._replace(members=kept), current.deleted

        changes = [DraftChange(key, deleting(key), action="delete", expected=expected)]
        changes += [
            DraftChange(c, without_member, action="update", summary=f"Remove {key} from {c}: {key} was deleted")
            for c in holders
        ]
        shown = ", ".join(holders[:5]) + (f" and {len(holders) - 5} more" if len(holders) > 5 else "")
        summary = f"Delete {key}, removing it from {shown}"
        results = write_entity_drafts(repo, changes, rules=rules, author=author, summary=summary)
    return results[0]


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

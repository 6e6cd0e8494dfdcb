"""Commits as the layers above read them: typed ids, a commit record, first-parent walks and
ancestry, and git signatures made from a name, an e-mail address and a time.

Ids are `typing.NewType`s over `pygit2.Oid`, not a class of gitstore's own nor hex strings. A
NewType is the Oid itself at run time: libgit2 takes it as it is, it hashes and compares as fast
as an Oid, and wrapping one costs an identity call. The write path spends ~1.4 ms of library
CPU on a write and a read ~1 ms on a request, touching a dozen ids each; a wrapper object, or
hex strings parsed back into Oids at each libgit2 call, would add a conversion to each of them
for no gain. The type checker still tells a commit from a tree: `CommitId` and `TreeId` do not
mix, and both are accepted where any `ObjectId` is. Hex strings stay at the edges (index rows,
trailers, JSON answers), and `commit_id` turns one into an id.

Objects gitstore itself named (through a ref, a trailer, an index row, a tree entry) are read
with `read_commit` and the walks: one that is missing is damage, and surfaces as libgit2's
KeyError, which `storage.missing.object_errors` reports as CorruptObject. Ids a client or a
bundle brings are looked up with `find_commit` or `is_commit`, which answer None or False.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import NewType, TypeAlias

import pygit2

__all__ = [
    "BlobId",
    "CommitId",
    "CommitRecord",
    "GitHandle",
    "ObjectId",
    "Signature",
    "TreeId",
    "commit_id",
    "commit_message",
    "commit_tree",
    "find_commit",
    "first_parent",
    "first_parent_commits",
    "first_parent_history",
    "gitstore_signature",
    "has_object",
    "history_oldest_first",
    "is_ancestor",
    "is_commit",
    "read_commit",
    "signature",
    "signature_time",
]

#: One thread's handle on a repository (`GitRepository.git`): what every storage function
#: reads and writes through.
GitHandle: TypeAlias = pygit2.Repository
#: Any object's id: a commit, a tree or a blob.
ObjectId: TypeAlias = pygit2.Oid
CommitId = NewType("CommitId", pygit2.Oid)
TreeId = NewType("TreeId", pygit2.Oid)
BlobId = NewType("BlobId", pygit2.Oid)
#: Who made a commit and when: `.name`, `.email`, `.time` (seconds since the epoch), `.offset`
#: (minutes east of UTC).
Signature: TypeAlias = pygit2.Signature


def commit_id(hex_id: str) -> CommitId:
    """The commit id that hex string `hex_id` names (ValueError if it is not hex)."""
    return CommitId(pygit2.Oid(hex=hex_id))


@dataclass(frozen=True, slots=True)
class CommitRecord:
    """One commit, read whole."""

    id: CommitId
    tree: TreeId
    parents: tuple[CommitId, ...]
    message: str
    author: Signature
    committer: Signature

    @property
    def first_parent(self) -> CommitId | None:
        return self.parents[0] if self.parents else None


def _record(commit: pygit2.Commit) -> CommitRecord:
    return CommitRecord(
        CommitId(commit.id),
        TreeId(commit.tree_id),
        tuple(commit.parent_ids),  # type: ignore[arg-type]
        commit.message,
        commit.author,
        commit.committer,
    )


def read_commit(git: GitHandle, oid: CommitId) -> CommitRecord:
    """The commit `oid`, which gitstore named itself (see the module docstring)."""
    return _record(git[oid])  # type: ignore[arg-type]


def find_commit(git: GitHandle, oid: ObjectId) -> CommitRecord | None:
    """The commit `oid`, or None if this repository has no commit of that id."""
    found = git.get(oid)
    return _record(found) if isinstance(found, pygit2.Commit) else None


def is_commit(git: GitHandle, oid: ObjectId) -> bool:
    """Whether this repository has a commit of that id (a client's or a pin's id, say)."""
    return isinstance(git.get(oid), pygit2.Commit)


def has_object(git: GitHandle, oid: ObjectId) -> bool:
    """Whether this repository has an object of that id (pruning removes commits)."""
    return oid in git


def commit_message(git: GitHandle, commit: CommitId) -> str:
    """The message of `commit` (reads nothing else of it)."""
    return git[commit].message  # type: ignore[attr-defined, no-any-return]


def commit_tree(git: GitHandle, commit: CommitId) -> TreeId:
    """The root tree of `commit`."""
    return TreeId(git[commit].tree_id)  # type: ignore[attr-defined]


def first_parent(git: GitHandle, commit: CommitId) -> CommitId | None:
    parents = git[commit].parent_ids  # type: ignore[attr-defined]
    return parents[0] if parents else None


def first_parent_history(
    git: GitHandle, tip: CommitId | None, *, stop_at: CommitId | None = None
) -> Iterator[CommitId]:
    """`tip`, its first parent, that one's first parent...: newest first, up to the root or up
    to (without) `stop_at`. Reads only each commit's parents."""
    oid = tip
    while oid is not None and oid != stop_at:
        yield oid
        oid = first_parent(git, oid)


def first_parent_commits(git: GitHandle, tip: CommitId | None) -> Iterator[CommitRecord]:
    """`first_parent_history` with each commit read whole; stop iterating to stop reading."""
    oid = tip
    while oid is not None:
        record = read_commit(git, oid)
        yield record
        oid = record.first_parent


def history_oldest_first(git: GitHandle, tip: CommitId) -> list[CommitRecord]:
    """Every commit reachable from `tip`, each after its parents (`git rev-list --topo-order
    --reverse`)."""
    return [_record(c) for c in git.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)]


def is_ancestor(git: GitHandle, ancestor: CommitId, descendant: CommitId) -> bool:
    """`git merge-base --is-ancestor`: whether `ancestor` is `descendant` or in its history.
    Both must be commits of this repository (check an id from outside with `is_commit`)."""
    return ancestor == descendant or git.descendant_of(descendant, ancestor)


def signature(name: str, email: str, at: datetime | None = None) -> Signature:
    """A git signature: now, or at `at`, which must carry its UTC offset."""
    if at is None:
        return pygit2.Signature(name, email)
    offset = at.utcoffset()
    if offset is None:
        raise ValueError(f"a change's time needs its UTC offset: {at.isoformat()}")
    return pygit2.Signature(name, email, int(at.timestamp()), int(offset.total_seconds()) // 60)


def gitstore_signature() -> Signature:
    """gitstore's own, now: for the commits it makes when nobody asked (a repair)."""
    return pygit2.Signature("gitstore", "gitstore@localhost")


def signature_time(sig: Signature) -> datetime:
    """When `sig` was made, in its own UTC offset."""
    tz = timezone(timedelta(minutes=sig.offset)) if sig.offset else UTC
    return datetime.fromtimestamp(sig.time, tz)

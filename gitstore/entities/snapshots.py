"""Reading entity commits: a commit's content, numbers and author, and what is published.

The published commit of an entity is decided by `refs/heads/main`, the commit point of every
publish: the newest publish commit lists each entity it moved (`Gitstore-Published: key sha`),
and every older publish is fully applied to `refs/published/*` before a new one starts. So a
reader that trusts main's newest entry first, and the ref otherwise, sees a multi-entity
publish all at once even while its refs are still being moved, or after a crash left them
behind.

Draft changes to several entities at once (a delete that removes the entity from every
container, an import) work the same way with `refs/heads/draft` as the commit point: its
newest commit lists each entity commit of the batch (`Gitstore-Batch: key sha`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from gitstore.entities.document import Content, files_to_document
from gitstore.entities.model import Author
from gitstore.entities.trailers import parse_repeated, parse_trailers
from gitstore.errors import EntityNotFound
from gitstore.repository import DRAFT, MAIN, ContentRepository, draft_ref, published_ref
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    Signature,
    TreeId,
    commit_id,
    commit_message,
    is_ancestor,
    read_commit,
    read_files,
    read_ref,
    signature_time,
)
from gitstore.storage.api import signature as git_signature


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An entity's content at one commit of its draft branch."""

    commit: CommitId
    tree: TreeId
    key: str
    document: Content
    deleted: bool
    version: int
    edition: int
    action: str
    message: str
    author: Author
    at: datetime


# Commits never change, so a snapshot read once is good forever: keep the hot ones. Keyed by
# commit id alone, which names the same content in any repository.
_SNAPSHOT_CACHE_SIZE = 8192
_snapshots: dict[CommitId, Snapshot] = {}
_snapshots_guard = threading.Lock()


def load_snapshot(git: GitHandle, oid: CommitId) -> Snapshot:
    snap = _snapshots.get(oid)
    if snap is None:
        snap = _read_snapshot(git, oid)
        remember(snap)
    return snap


def remember(snap: Snapshot) -> None:
    """Cache a snapshot its writer already holds, as if it had been read: a batch's new
    commits are read again at once by the publish that often follows it."""
    with _snapshots_guard:
        if len(_snapshots) >= _SNAPSHOT_CACHE_SIZE:
            del _snapshots[next(iter(_snapshots))]
        _snapshots[snap.commit] = snap


def forget_cached() -> None:
    """Empty the snapshot cache (benchmarks measure cold reads with it)."""
    with _snapshots_guard:
        _snapshots.clear()


def _read_snapshot(git: GitHandle, oid: CommitId) -> Snapshot:
    commit = read_commit(git, oid)
    trailers = parse_trailers(commit.message)
    document, deleted = files_to_document(read_files(git, commit.tree))
    return Snapshot(
        commit=oid,
        tree=commit.tree,
        key=trailers.get("Key", ""),
        document=document,
        deleted=deleted,
        version=int(trailers.get("Version", "0")),
        edition=int(trailers.get("Edition", "0")),
        action=trailers.get("Action", ""),
        message=commit.message,
        author=Author(commit.author.name, commit.author.email),
        at=commit_time(commit.author),
    )


def signature(author: Author) -> Signature:
    """The git signature of a change by `author`: now, or the time the author carries."""
    return git_signature(author.name, author.email, author.at)


#: When a signature was made (the name callers of this module know it by).
commit_time = signature_time


_entry_maps: dict[tuple[str, str], tuple[CommitId, dict[str, str]]] = {}
_entry_maps_guard = threading.Lock()


def newest_publish(repo: ContentRepository, main: CommitId) -> dict[str, str]:
    """key -> commit for every entity moved by the publish commit `main` (cached per tip)."""
    return _listed(repo, main, "Published")


def newest_batch(repo: ContentRepository, head: CommitId) -> dict[str, str]:
    """key -> commit for every entity of the batch that commit `head` of `draft` records
    (empty when `head` records a single change, whose entity ref is its commit point)."""
    return _listed(repo, head, "Batch")


def _listed(repo: ContentRepository, commit: CommitId, trailer: str) -> dict[str, str]:
    slot = (str(repo.path), trailer)
    cached = _entry_maps.get(slot)
    if cached is not None and cached[0] == commit:
        return cached[1]
    listed = _entries(repo.storage.git, commit, trailer)
    with _entry_maps_guard:
        _entry_maps[slot] = (commit, listed)
    return listed


def published_by(git: GitHandle, commit: CommitId) -> dict[str, str]:
    """key -> commit for every entity moved by publish commit `commit`, any commit of main
    (`newest_publish` caches main's newest; this reads older ones)."""
    return _entries(git, commit, "Published")


def _entries(git: GitHandle, commit: CommitId, trailer: str) -> dict[str, str]:
    listed = parse_repeated(commit_message(git, commit), trailer)
    return dict(entry.split(" ", 1) for entry in listed)  # each entry is "<key> <sha>"


def draft_tip(repo: ContentRepository, key: str) -> CommitId:
    """The tip of `key`'s draft branch. Raises EntityNotFound if the entity never existed."""
    git = repo.storage.git
    head = read_ref(git, DRAFT)
    tip = read_ref(git, draft_ref(key))
    if head is not None:
        sha = newest_batch(repo, head).get(key)
        if sha is not None:
            batch = commit_id(sha)
            # The batch is the commit point until its entity refs move; a single change made
            # since (it leaves `draft` alone) moves the ref past it.
            if tip is None or not is_ancestor(git, batch, tip):
                return batch
    if tip is None:
        raise unknown_entity(repo, key)
    return tip


def unknown_entity(repo: ContentRepository, key: str) -> EntityNotFound:
    """What asking for a key that no entity has is told. Readers are told the same of a key
    that was never live, so that what they are told does not reveal that a draft exists."""
    return EntityNotFound(f"no entity {key!r} in {repo.name!r}", key=key)


def published_commit(repo: ContentRepository, key: str) -> CommitId | None:
    """The commit of `key` that is live (possibly a tombstone), or None if never published."""
    git = repo.storage.git
    main = read_ref(git, MAIN)
    if main is None:
        return None
    sha = newest_publish(repo, main).get(key)
    if sha is not None:
        return commit_id(sha)
    return read_ref(git, published_ref(key))

"""The public copy: what readers without the draft right may clone, a projection of what is live.

Hiding refs is not access control: git's protocol v2 serves any object by SHA, even an
unreachable one, whatever `uploadpack.hideRefs` says (measured). And `refs/published/<key>` is
a commit of the entity's draft branch, so a copy that carries it carries every draft before
it. So readers are served from a separate bare repository whose every object belongs to a
published state (ADR 0009):

    refs/heads/main   one commit per publish of the full repository's `main`, with the same
                      author name, time and summary, whose tree is the live site as a reader
                      sees it: an entity unpublished as gone or redirect is only its
                      `unpublishing.json`, a vanished one is not there at all.

There are no per-entity refs: `git log main -- <shard>/<key>` is an entity's live history.
Each commit names the `main` commit it projects (`Gitstore-Source`), and is built only from
that commit's own `Gitstore-Published` list and the projection of its parent, so the same
history always projects to the same commits: a sync resumes where the last one stopped, and a
rebuild (after an erasure rewrote history, or from an older layout) is deterministic.

It is derived state, like the index: the service syncs it right after each publish response
(off the publish's critical path), again before serving any reader, and at startup repair.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from gitstore.entities.api import (
    TAKEN_DOWN,
    format_message,
    load_snapshot,
    parse_repeated,
    parse_trailers,
    published_by,
    summary_of,
)
from gitstore.errors import Busy
from gitstore.publishing.public import LiveKeys, hidden_keys, public_files, shows_nothing
from gitstore.publishing.publish import PublishNote
from gitstore.repository import MAIN, ContentRepository
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    Identity,
    Signature,
    TreeId,
    commit_id,
    commit_message,
    commit_tree,
    copy_missing_trees,
    create_bare,
    first_parent_history,
    gathered,
    in_order,
    open_bare,
    read_commit,
    read_files,
    read_ref,
    update_aggregate,
    update_refs,
    write_commit,
    write_files,
    write_if_large,
)

__all__ = [
    "ensure_live_mirror",
    "live_mirror_path",
    "public_signature",
    "rebuild_live_mirror",
    "sync_live_mirror",
    "sync_live_mirror_after_publish",
]

_SOURCE = "Source"
_syncing: dict[str, threading.Lock] = {}

#: `GITSTORE_PUBLIC_AUTHORS`: what the public copy says of who published: the editor's
#: name (`name`, the default) or nothing (`none`). Never an e-mail address.
_AUTHOR_POLICIES = ("name", "none")
_ANONYMOUS_AUTHOR = "gitstore"


def live_mirror_path(repo: ContentRepository) -> Path:
    return repo.storage.control_dir / "live.git"


def sync_live_mirror(repo: ContentRepository) -> int:
    """Bring the public copy to `main`. Idempotent; returns the objects copied into it.

    Usually one publish behind: only what that publish moved is projected. A copy in an older
    layout, or whose history `main` no longer contains (an erasure), is rebuilt."""
    if _in_step(repo):
        return 0  # the common case for readers: no lock, so they never queue behind a publish
    with in_order(repo.storage, "publish"):
        source = repo.storage.git
        main = read_ref(source, MAIN)
        if main is None:
            return 0
        path = live_mirror_path(repo)
        mirror = open_bare(path)
        projected = _projected_source(mirror) if mirror is not None else None
        if projected == main:
            return 0
        todo = _publishes_after(source, main, projected) if mirror is not None and projected else None
        if todo is None:
            return _rebuild(repo, main)
        return _project(repo, path, todo)


def sync_live_mirror_after_publish(repo: ContentRepository) -> int:
    """`sync_live_mirror`, unless this process already has one running or waiting for the
    publish lock: that one reads `main` once it has the lock, so it brings this publish too.
    Run after each publish's response, so a burst of publishes would otherwise queue a sync each
    behind the publish lock, every one a waiter the lock budget counts. Never Busy: a copy left
    behind is caught up by the next reader before it is served."""
    guard = _syncing.setdefault(str(repo.path), threading.Lock())
    if not guard.acquire(blocking=False):
        return 0
    try:
        return sync_live_mirror(repo)
    except Busy:
        return 0
    finally:
        guard.release()


def rebuild_live_mirror(repo: ContentRepository) -> int:
    """Build the public copy again from the whole of `main` (after history was rewritten)."""
    with in_order(repo.storage, "publish"):
        main = read_ref(repo.storage.git, MAIN)
        return 0 if main is None else _rebuild(repo, main)


def ensure_live_mirror(repo: ContentRepository) -> Path:
    """The public copy's path, caught up with the newest publish."""
    sync_live_mirror(repo)
    return live_mirror_path(repo)


def public_signature(sig: Signature) -> Identity:
    """Who published, as the public may see it: a name or nothing, never an e-mail address,
    at the original time (so the projection of a commit never depends on when it is made)."""
    policy = os.environ.get("GITSTORE_PUBLIC_AUTHORS", "name")
    name = sig.name if policy == "name" else _ANONYMOUS_AUTHOR
    return Identity(name.encode(), b"", sig.time, sig.offset)


def _in_step(repo: ContentRepository) -> bool:
    mirror = open_bare(live_mirror_path(repo))
    return mirror is not None and _projected_source(mirror) == read_ref(repo.storage.git, MAIN)


def _projected_source(mirror: GitHandle) -> CommitId | None:
    """The `main` commit the copy's newest commit projects; None for an empty copy or one in
    an older layout (which held `main` itself and per-entity refs)."""
    head = read_ref(mirror, MAIN)
    if head is None:
        return None
    sha = parse_trailers(commit_message(mirror, head)).get(_SOURCE)
    return commit_id(sha) if sha else None


def _publishes_after(source: GitHandle, main: CommitId, done: CommitId | None) -> list[CommitId] | None:
    """main's first-parent commits after `done` (all of them for None), oldest first; None if
    `done` is not among them."""
    todo: list[CommitId] = []
    for commit in first_parent_history(source, main):
        if commit == done:
            return todo[::-1]
        todo.append(commit)
    return None if done is not None else todo[::-1]


def _rebuild(repo: ContentRepository, main: CommitId) -> int:
    """Project every commit of `main` into a new copy built aside, then swap it into place:
    a reader never sees a half-built copy, and nothing of the old one (an older layout's draft
    objects, erased content) survives the swap."""
    path = live_mirror_path(repo)
    building, old = path.with_name("live.git.building"), path.with_name("live.git.old")
    for leftover in (building, old):
        shutil.rmtree(leftover, ignore_errors=True)
    _create(building)
    history = _publishes_after(repo.storage.git, main, None)
    assert history is not None
    copied = _project(repo, building, history)
    if path.exists():
        os.rename(path, old)
    os.rename(building, path)
    shutil.rmtree(old, ignore_errors=True)
    return copied


def _project(repo: ContentRepository, path: Path, commits: list[CommitId]) -> int:
    """Add the projection of each of `commits` (oldest first) on top of the copy's `main`."""
    source = repo.storage.git
    copied = 0
    with gathered(path) as mirror:
        head = read_ref(mirror, MAIN)
        root = commit_tree(mirror, head) if head is not None else None
        for oid in commits:
            commit = read_commit(source, oid)
            changes: dict[str, TreeId | None] = {}
            wanted: list[TreeId] = []
            published = published_by(source, oid)
            live = _live_by(repo, oid, set(published))
            for key, sha in published.items():
                changes[key], needs = _public_tree(source, mirror, commit_id(sha), live)
                wanted += needs
            copied += copy_missing_trees(source, mirror, wanted)
            tree = update_aggregate(mirror, root, changes)
            head = write_commit(
                mirror,
                public_signature(commit.author),
                _public_message(commit.message, oid),
                tree,
                [head] if head is not None else [],
            )
            root = tree
            write_if_large(mirror)
    if head is not None and commits:
        # every object is on disk, and durable once a ref moves (storage.durability)
        update_refs(mirror, {MAIN: head})
    return copied


def _live_by(repo: ContentRepository, main: CommitId, published_now: set[str]) -> LiveKeys:
    """Which keys were live once publish `main` was made: a key published by it counts, since
    it goes live in the same instant as a page that names it."""

    def live(keys: Sequence[str]) -> set[str]:
        return repo.index.keys_live_by(keys, str(main)) | (published_now & set(keys))

    return live


def _public_tree(
    source: GitHandle, mirror: GitHandle, commit: CommitId, live: LiveKeys
) -> tuple[TreeId | None, list[TreeId]]:
    """What a reader may see of one published entity commit, as a tree (None: nothing) and the
    trees the copy needs from the full repository for it: the very tree, unless something of
    it must not be shown, which is then written into the copy as shown."""
    snap = load_snapshot(source, commit)
    doc = snap.document
    if shows_nothing(doc, snap.deleted):
        return None, []
    hidden = hidden_keys(doc, live)
    if not hidden and (doc.unpublishing is None or doc.unpublishing.type not in TAKEN_DOWN):
        return snap.tree, [snap.tree]
    shown = public_files(read_files(source, snap.tree), doc, snap.deleted, hidden)
    assert shown is not None
    return write_files(mirror, shown), []


def _public_message(message: str, source: CommitId) -> str:
    """The publish's summary, what it published and why (a change note is public, as on GOV.UK),
    without the draft head it saw."""
    trailers = [("Published", entry) for entry in parse_repeated(message, "Published")]
    return format_message(summary_of(message), [*trailers, *PublishNote.of(message).trailers(), (_SOURCE, str(source))])


def _create(path: Path) -> GitHandle:
    return create_bare(
        path,
        description="public copy: what is live, one commit per publish (no drafts)",
        config={
            "uploadpack.allowAnySHA1InWant": "false",
            "uploadpack.allowReachableSHA1InWant": "false",
            "uploadpack.allowTipSHA1InWant": "false",
        },
    )

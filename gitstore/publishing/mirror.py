"""The live-only repository: what readers without the draft right may clone.

Hiding refs is not access control: git's protocol v2 serves any object by SHA, even an
unreachable one, whatever `uploadpack.hideRefs` says (measured). So readers are served from a
separate bare repository that holds only `main`, `refs/published/*` and the objects they reach,
kept in step with `main`: the service syncs it right after each publish response (off the
publish's critical path: the copy costs more than the publish itself), and again before
serving any reader, so a reader never sees a publish late. It is derived state, like the index:
startup repair syncs it too.
"""

from __future__ import annotations

from pathlib import Path

import pygit2

from gitstore.entities.snapshots import newest_publish, published_by
from gitstore.repository import MAIN, ContentRepository, published_ref
from gitstore.storage.api import read_ref, update_refs
from gitstore.storage.git import configure_libgit2
from gitstore.storage.objects import copy_objects, missing_objects

__all__ = ["ensure_live_mirror", "live_mirror_path", "sync_live_mirror"]

_PUBLISHED = "refs/published/"


def live_mirror_path(repo: ContentRepository) -> Path:
    return repo.storage.control_dir / "live.git"


def sync_live_mirror(repo: ContentRepository) -> int:
    """Bring the live-only repository to `main`. Idempotent; returns the objects copied.

    Usually one publish behind: only the refs that publish moved are compared. Further behind
    (a crash, a new mirror), every published ref is."""
    if _in_step(repo):
        return 0  # the common case for readers: no lock, so they never queue behind a publish
    with repo.storage.publish_lock.held():
        source = repo.storage.git
        mirror = _open_or_create(live_mirror_path(repo))
        main = read_ref(source, MAIN)
        mirror_main = read_ref(mirror, MAIN)
        if main is None or mirror_main == main:
            return 0
        moved = _moved_since(repo, main, mirror_main)
        if moved is None:
            moved = _all_published(source)
        objects = missing_objects(source, mirror, [main, *moved.values()])
        copied = copy_objects(source, live_mirror_path(repo), objects)
        # objects are on disk, and durable once the first ref moves (storage.durability)
        update_refs(mirror, {published_ref(k): oid for k, oid in moved.items()})
        update_refs(mirror, {MAIN: main})
        return copied


def _in_step(repo: ContentRepository) -> bool:
    path = live_mirror_path(repo)
    if not (path / "HEAD").is_file():
        return False
    return read_ref(pygit2.Repository(str(path)), MAIN) == read_ref(repo.storage.git, MAIN)


def ensure_live_mirror(repo: ContentRepository) -> Path:
    """The live-only repository's path, caught up with the newest publish."""
    sync_live_mirror(repo)
    return live_mirror_path(repo)


# Publishes landing together leave the mirror a few behind (the sync after each runs once the
# publish lock is free). Reading that many publish commits beats comparing every published
# ref: at the load bench's 2,400 published entities that cost 18% of the server's CPU.
_WALK_BACK = 64


def _moved_since(
    repo: ContentRepository, main: pygit2.Oid, mirror_main: pygit2.Oid | None
) -> dict[str, pygit2.Oid] | None:
    """Where each published ref moved by the publishes after `mirror_main` points now (the
    newest publish of a key wins), read off those publish commits; None if `mirror_main` is not
    among the last `_WALK_BACK` commits of main's first-parent line."""
    if mirror_main is None:
        return None
    git = repo.storage.git
    moved: dict[str, pygit2.Oid] = {}
    commit: pygit2.Oid | None = main
    for _ in range(_WALK_BACK):
        if commit == mirror_main:
            return moved
        if commit is None:
            return None
        listed = newest_publish(repo, commit) if commit == main else published_by(git, commit)
        for key, sha in listed.items():
            moved.setdefault(key, pygit2.Oid(hex=sha))
        parents = git[commit].parent_ids  # type: ignore[attr-defined]
        commit = parents[0] if parents else None
    return None


def _all_published(git: pygit2.Repository) -> dict[str, pygit2.Oid]:
    found = {}
    for name in git.references:
        if name.startswith(_PUBLISHED):
            found[name[len(_PUBLISHED) :]] = git.references[name].target
    return found


def _open_or_create(path: Path) -> pygit2.Repository:
    configure_libgit2()
    if (path / "HEAD").is_file():
        return pygit2.Repository(str(path))
    mirror = pygit2.init_repository(str(path), bare=True, initial_head="main")
    (path / "description").write_text("live-only view: main and refs/published/* (no drafts)\n")
    mirror.config["uploadpack.allowAnySHA1InWant"] = "false"
    mirror.config["uploadpack.allowReachableSHA1InWant"] = "false"
    mirror.config["uploadpack.allowTipSHA1InWant"] = "false"
    return mirror

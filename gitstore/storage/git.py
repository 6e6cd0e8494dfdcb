"""Bare repositories on disk, opened once per thread.

libgit2 forbids sharing one repository object between threads, and pygit2 releases the GIL in
several calls, so each thread (and each process after a fork) gets its own `pygit2.Repository`.
Opening one costs ~0.13 ms, which is why it is cached rather than opened per request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2

from gitstore.storage.commits import GitHandle
from gitstore.storage.journal import open_journal
from gitstore.storage.locks import HOUSEKEEPING_LOCK, PATIENT, LockBudget, RepoLock
from gitstore.storage.loose import guarded_odb
from gitstore.storage.packs import ObjectBuffer, attach

_configured = False
_configure_guard = threading.Lock()
# Asked before the packs and loose objects on disk, so new objects land in the buffer.
_BUFFER_PRIORITY = 100


def configure_libgit2() -> None:
    """Process-wide libgit2 settings. Idempotent."""
    global _configured
    with _configure_guard:
        if _configured:
            return
        # Durability is the default: without it a power loss can leave a ref naming an object
        # that never reached the disk (~8 fsyncs and +1.3 ms per commit, measured).
        pygit2.settings.enable_fsync_gitdir(True)
        # Shard trees are ~8 KB, over libgit2's 4 KB default, and would be re-inflated on every
        # read of an aggregate branch (5x slower reads, measured).
        pygit2.settings.cache_object_limit(pygit2.enums.ObjectType.TREE, 1 << 20)
        pygit2.settings.cache_object_limit(pygit2.enums.ObjectType.COMMIT, 1 << 16)
        _configured = True


class GitRepository:
    """One bare repository: its path, its per-thread handles and its write locks.

    `drafts_lock` serialises draft writes (each entity's ref, the `draft` branch, the index);
    `publish_lock` serialises publishes (`main`, the published refs); `housekeeping_lock`,
    packing refs and sweeping lock files, which writers never wait for. Take them in the order
    housekeeping, publish, drafts. `lock_budget` bounds the waits for them.
    """

    def __init__(self, path: Path, lock_budget: LockBudget = PATIENT) -> None:
        self.path = path
        control = path / "gitstore"
        self.drafts_lock = RepoLock(control / "drafts.lock", lock_budget)
        self.publish_lock = RepoLock(control / "publish.lock", lock_budget)
        self.housekeeping_lock = RepoLock(path / HOUSEKEEPING_LOCK, lock_budget)
        self._local = threading.local()
        # Before anything reads it: after a crash, refs may name objects only the journal
        # holds. The copies gitstore keeps inside its control folder (the live-only copy) too.
        for git_dir in (path, *control.glob("*.git")):
            open_journal(str(git_dir))

    @property
    def git(self) -> GitHandle:
        """This thread's handle on the repository (inside `buffered_objects`, the buffering one)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.repo = self.new_handle()
            local.buffered = None
            local.pid = os.getpid()
        return local.buffered or local.repo  # type: ignore[no-any-return]

    def new_handle(self) -> GitHandle:
        """A handle of the caller's own, shared with no one: for a long read that moves from
        thread to thread (a streamed export), which must never use a handle another thread
        may be using at the same moment."""
        configure_libgit2()
        repo = pygit2.Repository(str(self.path))
        repo.set_odb(guarded_odb(str(self.path / "objects")))
        return repo

    @contextmanager
    def buffered_objects(self, *, enabled: bool = True) -> Iterator[Callable[[], int]]:
        """Within it, objects this thread writes stay in memory until the `flush` it yields
        writes them as one pack (gitstore.storage.packs); what is not flushed is never written.
        Flush before pointing any ref at them. Nested, it yields the flush already in use;
        not `enabled`, a flush with nothing to do."""
        local = self._local
        self.git  # noqa: B018 (opens this thread's handle if it has none yet)
        if not enabled or local.buffered is not None:
            yield local.buffered_flush if local.buffered is not None else lambda: 0
            return
        buffer = ObjectBuffer(self.path / "objects")
        handle = self.new_handle()
        handle.odb.add_backend(buffer, _BUFFER_PRIORITY)
        attach(handle, buffer)
        local.buffered, local.buffered_flush = handle, buffer.flush
        try:
            yield buffer.flush
        finally:
            local.buffered = local.buffered_flush = None

    @property
    def control_dir(self) -> Path:
        """gitstore's own files inside the bare repository (locks, the index)."""
        return self.path / "gitstore"


def open_bare(path: Path) -> GitHandle | None:
    """A handle on the plain bare repository at `path` (not one of gitstore's own, which
    `GitRepository` opens), or None if there is none there."""
    if not (path / "HEAD").is_file():
        return None
    configure_libgit2()
    return pygit2.Repository(str(path))


def create_bare(path: Path, *, description: str, config: dict[str, str]) -> GitHandle:
    """A new plain bare repository at `path`, its branch `main`, with `config` set."""
    configure_libgit2()
    handle = pygit2.init_repository(str(path), bare=True, initial_head="main")
    (path / "description").write_text(description + "\n")
    for name, value in config.items():
        handle.config[name] = value
    return handle


def init_bare(path: Path, description: str) -> GitRepository:
    """Create a bare repository at `path` (which must not exist yet)."""
    configure_libgit2()
    pygit2.init_repository(str(path), bare=True, initial_head="main")
    return make_ours(path, description)


def make_ours(path: Path, description: str) -> GitRepository:
    """Make the bare repository at `path` (new, or a copy `git clone` just made) one of
    gitstore's: its description, its control folder, and the settings below."""
    configure_libgit2()
    (path / "description").write_text(description + "\n" if description else "")
    (path / "gitstore").mkdir(exist_ok=True)
    repo = pygit2.Repository(str(path))
    # Clones must stay safe for people who fetch with transfer.fsckObjects; git's own tools
    # honour these when they touch the repository (gc, fsck, the smart-HTTP server).
    repo.config["core.fsync"] = "committed,reference"
    repo.config["receive.fsckObjects"] = "true"
    repo.config["gc.auto"] = "0"
    return GitRepository(path)

"""When what gitstore writes reaches the disk.

git's rule, and gitstore's: an object is durable before any ref names it, and a ref is durable
before the write that moved it is acknowledged. There are two ways to keep it, chosen per
process with `GITSTORE_FSYNC` (git calls the same choice `core.fsyncMethod`):

- `syncfs` (the default on Linux): a loose object is written and renamed into place without an
  fsync of its own; before a ref moves, one `syncfs(2)` of the repository's file system makes
  every object written so far durable, directory entries included. A draft write makes about
  eight objects and moves two refs: 18 fsyncs became two syncfs and two directory fsyncs
  (ADR 0006 has the measurements). The cost: syncfs also waits for whatever else is dirty on
  that file system, so a data directory that shares its disk with heavy unrelated writers
  should use `fsync`.
- `fsync`: every object file and its directory are fsynced as they are written (git's
  `core.fsyncMethod=fsync`); a ref needs nothing more than its own fsync.

Either way a crash before the ref moves leaves only unreferenced objects, which `git prune`
clears, and a crash after it leaves everything the ref names on disk.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Sequence

__all__ = ["METHODS", "before_refs_move", "method", "object_written", "use_method"]

METHODS = ("syncfs", "fsync")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True) if sys.platform == "linux" else None
_method: str | None = None
# Every object write counts, a write of an object already on disk too: another process may
# have written it and not yet synced it, and this process is about to depend on it. A count is
# taken after its write completes, so a syncfs started once the count reached n covers the
# first n writes.
_written = 0
_synced = 0
_count_guard = threading.Lock()
_sync_guard = threading.Lock()


def method() -> str:
    """The method this process uses: `GITSTORE_FSYNC`, else syncfs where the kernel has it."""
    global _method
    if _method is None:
        wanted = os.environ.get("GITSTORE_FSYNC", "")
        if wanted and wanted not in METHODS:
            raise ValueError(f"GITSTORE_FSYNC must be one of {', '.join(METHODS)}, not {wanted!r}")
        _method = wanted or ("syncfs" if _libc is not None and hasattr(_libc, "syncfs") else "fsync")
    return _method


def use_method(name: str | None) -> None:
    """Choose the method for this process (None: back to the environment's). For tests and tools."""
    global _method
    if name is not None and name not in METHODS:
        raise ValueError(f"unknown durability method {name!r}")
    _method = name


def fsync_each_object() -> bool:
    """Whether a loose object is fsynced as it is written."""
    return method() == "fsync"


def object_written() -> None:
    """Note that an object was written (or found on disk) without being made durable."""
    global _written
    with _count_guard:
        _written += 1


def before_refs_move(repository: str, ref_fds: Sequence[int]) -> None:
    """Make the objects written so far durable, and the new content of each ref lock file in
    `ref_fds` (already written). Call it just before renaming the lock files over their refs.
    With syncfs one call covers them all, where an fsync each would cost a disk write each."""
    if method() == "fsync" or (len(ref_fds) == 1 and _synced >= _written):
        for fd in ref_fds:
            os.fsync(fd)
        return
    for _ in ref_fds:
        object_written()  # the lock files are writes that the syncfs must cover too
    _syncfs(repository)


def _syncfs(path: str) -> None:
    global _synced
    target = _written
    with _sync_guard:  # threads that arrive while one syncs wait for it, then often need nothing
        if _synced >= target:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            assert _libc is not None
            if _libc.syncfs(fd) != 0:  # ctypes releases the GIL for the call
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), path)
        finally:
            os.close(fd)
        _synced = max(_synced, target)

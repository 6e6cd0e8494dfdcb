"""Small files replaced atomically: a reader sees the old content or the new, never a mix."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True) if sys.platform == "linux" else None


def write_atomically(
    path: str | Path, data: bytes, *, mode: int = 0o644, staging_prefix: str | None = None, durable: bool = True
) -> None:
    """Write `data` beside `path`, fsync it, rename it over `path`, fsync the directory.

    The staging file is unique to this call and removed if anything fails; `staging_prefix`
    names it for tools that clear leftovers (git's `tmp_obj_`). Not `durable`: no fsyncs, for a
    caller that makes the file system durable later in one go (storage.durability)."""
    folder, name = os.path.split(path)
    prefix = f".{name}." if staging_prefix is None else staging_prefix
    staging = os.path.join(folder, f"{prefix}{os.urandom(6).hex()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise
    if durable:
        fsync_dir(folder or ".")


def fsync_dir(path: str | Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def can_sync_file_system() -> bool:
    """Whether `sync_file_system` is one file system's flush (syncfs(2)), not every one's."""
    return _libc is not None and hasattr(_libc, "syncfs")


def sync_file_system(path: str | Path) -> None:
    """Make everything written to the file system holding `path` durable: syncfs(2), which
    waits for every dirty page of that file system (other processes' too); elsewhere sync(2)."""
    if not can_sync_file_system():
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _libc is not None
        if _libc.syncfs(fd) != 0:  # ctypes releases the GIL for the call
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)

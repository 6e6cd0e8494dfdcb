"""A hook per repository, keyed by its git dir's real path: what fencing and replication keep.

Storage calls a repository's hook on its write path with the git dir as it has it, so the lookup
must be cheap: a registry with no hooks (embedded mode) costs a test for an empty dict, and a
spelling of a git dir already seen costs two dict lookups. A path spelt another way (a trailing
separator, a symlink) finds the same hook.
"""

from __future__ import annotations

import os
import threading
from typing import Generic, TypeVar

__all__ = ["PerRepository"]

Hook = TypeVar("Hook")


class PerRepository(Generic[Hook]):
    def __init__(self) -> None:
        self._hooks: dict[str, Hook] = {}
        # Spellings of git dirs already resolved: realpath costs a few syscalls, a write runs this often.
        self._spellings: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, git_dir: str | os.PathLike[str], hook: Hook) -> None:
        """`hook` for the repository at `git_dir`, replacing any it had."""
        with self._lock:
            self._hooks[_real(git_dir)] = hook

    def drop(self, git_dir: str | os.PathLike[str]) -> None:
        with self._lock:
            self._hooks.pop(_real(git_dir), None)

    def git_dirs(self) -> list[str]:
        """The git dirs that have a hook (real paths)."""
        with self._lock:
            return sorted(self._hooks)

    def get(self, git_dir: str) -> Hook | None:
        if not self._hooks:
            return None
        key = self._spellings.get(git_dir)
        if key is None:
            key = self._spellings[git_dir] = _real(git_dir)
        return self._hooks.get(key)


def _real(git_dir: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(git_dir))

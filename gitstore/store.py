"""The data directory: one bare repository per content library, `<name>.git`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from gitstore.erasure import finish_erasures
from gitstore.errors import CorruptObject, RepositoryExists, RepositoryNotFound
from gitstore.links.api import draft_dependents
from gitstore.names import validate_repo_name
from gitstore.repository import ContentRepository
from gitstore.storage.api import PATIENT, LockBudget, check_fence, disk_errors, init_bare, object_errors
from gitstore.upkeep.api import RepairReport, repair

__all__ = ["Store"]

log = logging.getLogger("gitstore")


class Store:
    """Every content repository under one data directory. `lock_budget` bounds how long, and
    how many at once, callers wait for a repository's locks (a service sets one; by default
    they wait as long as it takes)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, lock_budget: LockBudget = PATIENT) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.lock_budget = lock_budget
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, ContentRepository] = {}
        self._guard = threading.Lock()
        self._after_publish: list[Callable[[ContentRepository], None]] = []

    def create_repository(self, name: str, description: str = "") -> ContentRepository:
        """Create an empty content repository. Raises RepositoryExists, InvalidName."""
        path = self._path_of(name)
        if path.exists():
            raise RepositoryExists(f"repository {name!r} already exists", name=name)
        # Build it aside and rename it into place: a racing create or a crash never leaves a
        # half-made repository under the real name.
        with disk_errors():
            staging = Path(tempfile.mkdtemp(prefix=f".creating-{name}-", dir=self.data_dir))
        try:
            with disk_errors():
                init_bare(staging / "repo.git", description)
            try:
                with disk_errors():
                    os.rename(staging / "repo.git", path)
            except OSError:
                raise RepositoryExists(f"repository {name!r} already exists", name=name) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.repository(name)

    def repository(self, name: str) -> ContentRepository:
        """An existing content repository. Raises RepositoryNotFound, InvalidName."""
        path = self._path_of(name)
        with self._guard:
            repo = self._open.get(name)
            if repo is None:
                if not (path / "HEAD").is_file():
                    # One a move took from this node answers its fence's refusal: not here
                    # now, retry (a request routed here just before the move ended).
                    check_fence(str(path))
                    raise RepositoryNotFound(f"no repository {name!r}", name=name)
                repo = self._open[name] = ContentRepository(name, path, self.lock_budget)
                repo.describe_drafts = partial(draft_dependents, repo)
                repo.after_publish = self._after_publish
        return repo

    def call_after_publish(self, listener: Callable[[ContentRepository], None]) -> None:
        """Call `listener` with the repository after each publish, unpublish or republish in
        any repository of this store (gitstore.content), once the publish's locks are let go.
        It runs on the publisher's thread: what takes long belongs on a thread of its own."""
        with self._guard:
            self._after_publish.append(listener)

    def opened(self, name: str) -> ContentRepository | None:
        """The repository if it is open already: no disk access, no lock, so an event loop may
        ask. None means "call `repository`"."""
        return self._open.get(name)

    def drop(self, name: str) -> None:
        """Forget the open handle of `name`, whose files are about to move away (a cluster
        move took the repository to another node); `repository` opens it afresh if it is back."""
        with self._guard:
            self._open.pop(name, None)

    def opened_repositories(self) -> list[ContentRepository]:
        """The repositories this process has open (the only ones it can have written to)."""
        with self._guard:
            return list(self._open.values())

    def repositories(self) -> list[ContentRepository]:
        """Every repository, by name."""
        names = sorted(p.name[: -len(".git")] for p in self.data_dir.glob("*.git") if (p / "HEAD").is_file())
        return [self.repository(n) for n in names]

    def is_empty(self) -> bool:
        return not any(self.data_dir.glob("*.git"))

    def repair_all(self) -> dict[str, RepairReport]:
        """Repair every repository. One whose repair needs a damaged object is left as it is
        (logged): the service still starts, and only what needs that object fails."""
        reports = {}
        for repo in self.repositories():
            try:
                with object_errors():
                    finish_erasures(repo)  # before repair: it rebuilds what an erasure rewrote
                    reports[repo.name] = repair(repo)
            except CorruptObject as exc:
                log.error(
                    "repository %s was not repaired: %s (run `gitstore fsck %s`)", repo.name, exc.detail, repo.name
                )
        return reports

    def _path_of(self, name: str) -> Path:
        validate_repo_name(name)
        path = self.data_dir / f"{name}.git"
        if path.parent != self.data_dir:  # the name rules make this impossible; keep it so
            raise RepositoryNotFound(f"no repository {name!r}", name=name)
        return path

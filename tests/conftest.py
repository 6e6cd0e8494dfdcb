"""Shared fixtures: a store in a temporary data directory, and an HTTP client on it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import Author, ContentRepository, Store
from gitstore.access.credentials import Credentials, default_path
from gitstore.entities.draft_branch import folded_draft_head

ADA = Author("Ada Lovelace", "ada@example.org")
GRACE = Author("Grace Hopper", "grace@example.org")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


@pytest.fixture
def repo(store: Store) -> ContentRepository:
    return store.create_repository("demo", "a test repository")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", load_samples=False, max_body_bytes=64 * 1024)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        c.post("/repos", json={"name": "demo"}).raise_for_status()
        yield c


def token_for(data_dir: Path, scopes: dict[str, list[str]], who: Author = ADA) -> str:
    """A new bearer token in the data directory's credentials file (which ends open mode)."""
    return Credentials(default_path(data_dir)).create_token(who.name, who.email, scopes).secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def git(path: Path, *args: str) -> str:
    """Run the real git client against a bare repository."""
    done = subprocess.run(["git", "--git-dir", str(path), *args], capture_output=True, text=True, check=True)
    return done.stdout


def object_ids(path: Path) -> set[str]:
    """The id of every object in the repository at `path` (bare or a checkout), reachable or not."""
    done = subprocess.run(
        ["git", "-C", str(path), "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def object_bytes(path: Path) -> bytes:
    """Every object in the repository at `path`, reachable or not, as git would hand it out."""
    done = subprocess.run(
        ["git", "-C", str(path), "cat-file", "--batch-all-objects", "--batch"], capture_output=True, check=True
    )
    return done.stdout


def fsck_strict(path: Path) -> None:
    done = subprocess.run(
        ["git", "--git-dir", str(path), "fsck", "--strict", "--no-dangling"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr.lower(), done.stderr


@contextlib.contextmanager
def held_flock(path: Path) -> Iterator[None]:
    """Hold the flock of a RepoLock's file through a descriptor of its own, as another process
    would (the kernel tells flocks apart by open file, not by process)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def settle(path: Path) -> None:
    """Fold the draft changes that wait into `refs/heads/draft` of the bare repository at `path`,
    as the service does every second: a git reader of the repository then sees all of them.
    On a full disk they stay waiting (opening the index may fail there too)."""
    with contextlib.suppress(sqlite3.OperationalError):
        folded_draft_head(Store(path.parent).repository(path.name.removesuffix(".git")))


def disk_state(path: Path) -> tuple[str, list[str]]:
    """Every ref with its target, and any .lock file: what 'nothing was written' compares.

    Earlier changes still waiting to be folded into `draft` are folded first: a refused request
    may fold them (catching up with writes already made), but that is not a write of its own."""
    settle(path)
    refs = git(path, "for-each-ref", "--format=%(refname) %(objectname)")
    locks = sorted(str(p.relative_to(path)) for p in path.rglob("*.lock") if "gitstore" not in p.parts)
    return refs, locks

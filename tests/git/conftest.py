"""A real gitstore server on a free loopback port, and a real git client to talk to it."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from gitstore import ContentRepository, Store
from tests.conftest import token_for
from tests.serving import start_server

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    data: Path
    repo: ContentRepository

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return orjson.loads(response.read())

    def clone_url(self, *, live: bool = False) -> str:
        """The full repository's remote, or with `live` the public copy's."""
        return f"{self.url}/git/live/site.git" if live else f"{self.url}/git/site.git"


def _serve(data: Path, anonymous: str) -> Iterator[Server]:
    store = Store(data)
    repo = store.repository("site") if (data / "site.git").exists() else store.create_repository("site")
    proc, url = start_server(data, anonymous=anonymous)
    try:
        yield Server(url, data, repo)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server with no credentials: its loopback callers may do anything."""
    yield from _serve(tmp_path / "data", "none")


@pytest.fixture
def reader_server(tmp_path: Path) -> Iterator[Server]:
    """A server with credentials, whose callers without a token may read live content only."""
    token_for(tmp_path / "data", {"*": ["admin"]})
    yield from _serve(tmp_path / "data", "read")


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[Server]:
    """A server with credentials and no anonymous access."""
    token_for(tmp_path / "data", {"*": ["admin"]})
    yield from _serve(tmp_path / "data", "none")


def run_git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check, env=env, timeout=120)

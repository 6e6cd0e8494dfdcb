"""A real gitstore server on a free loopback port, and a real git client to talk to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from gitstore import ContentRepository, Store

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    data: Path
    repo: ContentRepository

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return orjson.loads(response.read())

    def clone_url(self) -> str:
        return f"{self.url}/git/site.git"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data: Path, anonymous: str) -> Iterator[Server]:
    store = Store(data)
    repo = store.repository("site") if (data / "site.git").exists() else store.create_repository("site")
    port = _free_port()
    env = os.environ | {"GITSTORE_DATA": str(data), "GITSTORE_SAMPLES": "0", "GITSTORE_ANONYMOUS": anonymous}
    log_path = data.parent / f"server-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/health", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(log_path.read_text()) from None
                time.sleep(0.05)
        yield Server(url, data, repo)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server whose callers may see drafts (the default until tokens arrive)."""
    yield from _serve(tmp_path / "data", "preview")


@pytest.fixture
def reader_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose callers may only read live content."""
    yield from _serve(tmp_path / "data", "read")


def run_git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check, env=env, timeout=120)

"""The server under load: `uvicorn --factory api.main:create_app --workers 2` (uvicorn[standard]:
uvloop and httptools) on a free loopback port and a data directory of its own, with credentials
configured, and the entities the load writes to seeded into the sample course."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from api.main import UVICORN_APP
from api.settings import PROJECT_ROOT
from gitstore import Author, Store, content
from gitstore.access.api import Credentials, default_path
from gitstore.entities.api import Change, DraftChange, parse_document

WORKERS = 2
SAMPLE_REPOS = ("demo-course", "gov-pages")
WRITE_REPO = "demo-course"
SEEDER = Author("Load Seed", "load-seed@example.org")
SEED_BATCH = 500


def create_load_token(data: Path) -> str:
    """A token that may preview, write and publish in the sample repositories, nothing more."""
    scopes = {repo: ["preview", "write", "publish"] for repo in SAMPLE_REPOS}
    issued = Credentials(default_path(data)).create_token("Load Test", "load@example.org", scopes)
    return issued.secret


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """CPU time the server and its workers have used so far. On a shared machine CPU time
        per request varies much less than requests per second."""
        return sum(self.cpu_seconds_by_process().values())

    def cpu_seconds_by_process(self) -> dict[int, float]:
        """`cpu_seconds`, for each process: how the work fell between the workers."""
        return {pid: _cpu_seconds(pid) for pid in _family(self.process.pid)}


@contextmanager
def running_server(data: Path, *, rate_limit: str | None, log: Path) -> Iterator[Server]:
    """Serve `data` until the block ends. `rate_limit=None` keeps the server's default limit,
    "" switches it off."""
    port = _free_port()
    env = os.environ | {
        "GITSTORE_DATA": str(data),
        "GITSTORE_SAMPLES": "1",
        "GITSTORE_CREDENTIALS": str(default_path(data)),
        "GITSTORE_ANONYMOUS": "none",
    }
    env.pop("GITSTORE_RATE_LIMIT", None)
    if rate_limit is not None:
        env["GITSTORE_RATE_LIMIT"] = rate_limit
    command = [sys.executable, "-m", "uvicorn", *UVICORN_APP, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(WORKERS)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers form a group we can stop together
        )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_until_healthy(server, log)
        yield server
    finally:
        _stop(process)


def seed_entities(data: Path, keys: Sequence[str]) -> dict[str, str]:
    """Create an unpublished draft for each key in the sample course; returns each key's draft
    tip. Written through the library while the server runs, as another process would."""
    repo = Store(data).repository(WRITE_REPO)
    tips: dict[str, str] = {}
    for start in range(0, len(keys), SEED_BATCH):
        batch = keys[start : start + SEED_BATCH]
        changes = [DraftChange(key, _created(key), action="create") for key in batch]
        results = content.write_drafts(repo, changes, author=SEEDER, summary="Seed load entities")
        tips.update((key, result.entity.commit) for key, result in zip(batch, results, strict=True))
    return tips


def live_paths(url: str, token: str) -> list[str]:
    """The path of every live sample entity (the listing leaves out redirects and gone ones)."""
    paths = []
    for repo in SAMPLE_REPOS:
        listing = orjson.loads(_get(f"{url}/repos/{repo}/entities?limit=500", token))
        paths += [f"/repos/{repo}/entities/{item['key']}" for item in listing["items"]]
    return paths


def _created(key: str) -> Change:
    document = parse_document({"type": "component.html", "title": f"Load {key}", "fields": {"html": "<p>seed</p>\n"}})
    return lambda _current: (document, False)  # the content, not deleted


def _get(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


def _wait_until_healthy(server: Server, log: Path) -> None:
    deadline = time.monotonic() + 60  # the first start builds the sample repositories
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(server.url + "/health", timeout=1).close()
            return
        except OSError:
            if server.process.poll() is not None:
                raise SystemExit(f"the server exited with {server.process.returncode}:\n{log.read_text()}") from None
            time.sleep(0.1)
    raise SystemExit(f"the server did not answer /health within 60 s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)  # uvicorn finishes in-flight requests, then its workers
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): state is [0], ppid [1]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def _family(root: int) -> list[int]:
    """`root` and every process descended from it."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    family = [root]
    for pid in family:
        family += [child for child, parent in parents.items() if parent == pid]
    return family


def _cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    user_and_system_ticks = int(fields[11]) + int(fields[12]) if fields else 0
    return user_and_system_ticks / os.sysconf("SC_CLK_TCK")

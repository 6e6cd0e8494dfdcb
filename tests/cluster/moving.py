"""What the move tests share: a cluster of real nodes, writers over HTTP that log every
acknowledged write, asking for a move and waiting for it, and the checks on git afterwards."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from gitstore import Author, Store, content
from gitstore.entities.api import DraftChange, parse_document
from gitstore.publishing.api import PublishTarget
from tests.cluster.nodes import Node, nodes

SEEDER = Author("Seeder", "seeder@example.org")
#: A writer's retry of a refused write: often, to measure the pause itself, not a back-off.
RETRY_SECONDS = 0.02


def document(title: str) -> dict[str, object]:
    return {"type": "component.html", "title": title, "fields": {"html": f"<p>{title}</p>\n"}}


@contextmanager
def cluster(base: Path, dsn: str, count: int = 3, *, before_start: object = None) -> Iterator[list[Node]]:
    """`count` nodes, started one after the other (each waits for its /health), stopped after."""
    made = nodes(base, dsn, count)
    if before_start is not None:
        before_start(made)  # type: ignore[operator]
    try:
        for node in made:
            node.start()
        yield made
    finally:
        for node in made:
            node.stop()


def seeded(base: Path, dsn: str, repo: str, entities: int) -> AbstractContextManager[list[Node]]:
    """Three nodes, the first holding `repo` with `entities` entities before it starts."""
    return cluster(base, dsn, before_start=lambda made: seed_on_disk(made[0].data, repo, entities))


def seed_on_disk(data: Path, repo: str, entities: int, *, batch: int = 2000) -> None:
    """`entities` entities (half of them published) written through the library into repository
    `repo` of a data directory (made if it is not there): before its node starts, the node adopts
    it; while it runs, as another process of that node would."""
    store = Store(data)
    made = store.repository(repo) if (data / f"{repo}.git").exists() else store.create_repository(repo, "seeded")
    for start in range(0, entities, batch):
        keys = [f"e{i:06d}" for i in range(start, min(entities, start + batch))]
        changes = [
            DraftChange(key, (lambda d: lambda _c: (d, False))(parse_document(document(key))), action="create")
            for key in keys
        ]
        content.write_drafts(made, changes, author=SEEDER, summary=f"seed {start}")
        content.publish(made, [PublishTarget(k) for k in keys[::2]], author=SEEDER)


def owner_of(url: str, repo: str) -> str:
    listing = httpx.get(f"{url}/repos", timeout=10).json()
    return next(item["owner"] for item in listing["items"] if item["name"] == repo)


def start_move(url: str, repo: str, node: str) -> httpx.Response:
    return httpx.post(f"{url}/admin/cluster/moves", json={"repository": repo, "node": node}, timeout=30)


def wait_for_move(url: str, repo: str, node: str, *, timeout: float = 300.0) -> dict[str, object]:
    """The move's status once it ended (done or failed), asked of any node."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/admin/cluster/moves/{repo}", params={"node": node}, timeout=30)
        assert answer.status_code == 200, answer.text
        status = answer.json()
        if status["state"] in ("done", "failed"):
            return status  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"the move of {repo} to {node} did not end in {timeout} s")


def wait_for_state(url: str, repo: str, node: str, states: tuple[str, ...], *, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/admin/cluster/moves/{repo}", params={"node": node}, timeout=30).json()
        if status["state"] in states:
            return status  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"the move of {repo} never reached {states}")


@dataclass
class Write:
    key: str
    sent: float
    answered: float
    status: int
    etag: str | None
    via: str
    attempts: int = 1
    first_sent: float = 0.0
    problem: str = ""  # a refusal's body: what a failed run shows


@dataclass
class Writers:
    """Threads writing entities of `repo` through the nodes `urls` (round robin), each write
    retried on a retryable refusal (503, 421) until acknowledged; every answer logged."""

    repo: str
    urls: list[str]
    count: int = 4
    keys_each: int = 20
    retry_for: float = 60.0
    log: list[Write] = field(default_factory=list)
    gave_up: list[Write] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Writers:
        for n in range(self.count):
            thread = threading.Thread(target=self._write, args=(n,), name=f"writer {n}")
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.retry_for + 30)
        assert not any(t.is_alive() for t in self._threads)

    @property
    def acknowledged(self) -> list[Write]:
        return [w for w in self.log if 200 <= w.status < 300]

    def _write(self, n: int) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(100_000):
                if self._stop.is_set():
                    return
                key = f"w{n}-{i % self.keys_each:03d}"
                self._one(client, self.urls[(n + i) % len(self.urls)], key, f"writer {n} write {i}")

    #: The refusals a write is sent again after (every other answer ends it).
    retryable: tuple[int, ...] = (0, 421, 503)  # 0: no answer
    put_timeout: float = 30.0

    def via(self, url: str, attempt: int) -> str:
        """The node a write's `attempt` (1, 2, ...) is sent through: always its first."""
        return url

    def _one(self, client: httpx.Client, url: str, key: str, title: str) -> None:
        first = time.time()  # wall clock: compared with the times a node reports
        deadline = first + self.retry_for
        for attempt in range(1, 100_000):
            via = self.via(url, attempt)
            sent = time.time()
            try:
                answer = client.put(
                    f"{via}/repos/{self.repo}/entities/{key}", json=document(title), timeout=self.put_timeout
                )
                status, etag = answer.status_code, answer.headers.get("etag")
                problem = "" if 200 <= status < 300 else answer.text[:400]
            except httpx.TransportError as exc:
                status, etag, problem = 0, None, repr(exc)
            write = Write(
                key, sent, time.time(), status, etag.strip('"') if etag else None, via, attempt, first, problem
            )
            with self._guard:
                self.log.append(write)
            if 200 <= status < 300 or status not in self.retryable or time.time() > deadline:
                if not 200 <= status < 300:
                    self.gave_up.append(write)
                return
            time.sleep(RETRY_SECONDS)


def pauses(writers: Writers, since: float, until: float) -> list[float]:
    """Each acknowledged write between `since` and `until`: seconds from its first try to its
    acknowledgement (retries included): what a client saw as the write's latency."""
    return sorted(w.answered - w.first_sent for w in writers.acknowledged if since <= w.answered <= until)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def git(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "--git-dir", str(path), *args], capture_output=True, text=True)


def fsck(path: Path) -> None:
    """`git fsck --strict` of a repository a node may still be writing, from its refs as they
    were before the check began. Asked for no heads, git lists the objects first and reads the
    refs after: a fold landing in between names an object it never listed ("missing commit")."""
    heads = sorted(set(git(path, "for-each-ref", "--format=%(objectname)").stdout.split()))
    assert heads, f"no refs in {path}"
    done = git(path, "fsck", "--strict", "--no-progress", *heads)
    assert done.returncode == 0, done.stdout + done.stderr


def is_ancestor(path: Path, commit: str, ref: str) -> bool:
    return git(path, "merge-base", "--is-ancestor", commit, ref).returncode == 0


def set_aside_copies(node: Node, repo: str) -> list[Path]:
    return sorted((node.data / ".moved-away").glob(f"{repo}.*.git"))

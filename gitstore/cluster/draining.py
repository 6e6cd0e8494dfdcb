"""Draining a node: every repository it owns moved to the other nodes, one at a time (issue 23).

The drained node runs the drain (it is the source of every move, so it has to be up anyway), on
a thread of its own, keeping its status in `<data>/.cluster-drains/<node>.json`. First the node
is marked `draining` in the control plane: nothing new is placed on it and no move goes to it.
Then, for each repository it owns, the least-loaded active live node (by repositories owned,
counting those moving to it) is asked to move it there (a signed internal call; the move runs on
that node, gitstore.cluster.moves), and the drain waits for that move to end before the next.
A repository whose move fails is tried once more at the end, on whichever node is then least
loaded; the drain is done when the node owns nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gitstore.cluster.peers import Peer, peer_of
from gitstore.errors import GitstoreError, MoveFailed, NoNodeAvailable
from gitstore.storage.api import write_atomically

if TYPE_CHECKING:
    from gitstore.cluster.control import ControlPlane
    from gitstore.cluster.node import ClusterNode

__all__ = ["DrainStatus", "Drains", "least_loaded"]

log = logging.getLogger("gitstore.cluster")

RECORDS = ".cluster-drains"
#: Passes over what the node still owns: the second retries the moves that failed in the first.
PASSES = 2


@dataclass
class DrainStatus:
    node: str
    state: str = "draining"  # then done or failed
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    moves: list[dict[str, Any]] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrainStatus:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def least_loaded(plane: ControlPlane, *, besides: str) -> str:
    """The active, live node other than `besides` that owns the fewest repositories (those moving
    to it counted as its own). Raises NoNodeAvailable."""
    candidates = [n.name for n in plane.nodes() if n.state == "active" and n.alive and n.name != besides]
    if not candidates:
        raise NoNodeAvailable(f"no active, live node but {besides} to move its repositories to")
    load: Counter[str] = Counter()
    for route in plane.routes():
        load[route.move_target or route.owner] += 1
    return min(candidates, key=lambda name: (load[name], name))


class Drains:
    """The drain of node `node` (this one), if asked for."""

    def __init__(self, node: ClusterNode, *, move_seconds: float = 3600.0, poll: float = 0.2) -> None:
        self.node = node
        self.move_seconds, self.poll = move_seconds, poll
        self.records = node.store.data_dir / RECORDS
        self.records.mkdir(exist_ok=True)
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def start(self) -> DrainStatus:
        """Mark this node draining and move everything off it in the background (a drain that
        runs already is answered as it is)."""
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                found = self.status()
                assert found is not None
                return found
            self.node.plane.set_node_state(self.node.name, "draining")
            status = DrainStatus(self.node.name)
            self._save(status)
            self._thread = threading.Thread(target=self._run, args=(status,), name="drain", daemon=True)
            self._thread.start()
            return status

    def status(self) -> DrainStatus | None:
        try:
            return DrainStatus.from_json(orjson.loads((self.records / f"{self.node.name}.json").read_bytes()))
        except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
            return None

    def wait(self, timeout: float) -> DrainStatus | None:
        with self._guard:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _run(self, status: DrainStatus) -> None:
        try:
            for _ in range(PASSES):
                owned = self._owned()
                if not owned:
                    break
                for repo in owned:
                    status.moves.append(self._move_one(repo))
                    self._save(status)
            status.left = self._owned()
            status.state = "done" if not status.left else "failed"
            if status.left:
                status.error = f"{len(status.left)} repositories could not be moved off node {self.node.name}"
        except GitstoreError as exc:
            status.state, status.error = "failed", exc.detail
            log.error("draining node %s failed: %s", self.node.name, exc.detail)
        status.finished_at = time.time()
        self._save(status)

    def _owned(self) -> list[str]:
        return sorted(r.repo for r in self.node.plane.routes() if r.owner == self.node.name)

    def _move_one(self, repo: str) -> dict[str, Any]:
        """Ask the least-loaded node to move `repo` to itself, and wait for the move to end."""
        target = least_loaded(self.node.plane, besides=self.node.name)
        outcome: dict[str, Any] = {"repository": repo, "target": target}
        try:
            peer = peer_of(self.node, target)
            asked = peer.call("POST", "/internal/cluster/moves", {"repository": repo})
            if asked.status != 202:
                return outcome | {"state": "refused", "error": _detail(asked.body)}
            ended = wait_for_move(peer, repo, timeout=self.move_seconds, pause=self.poll)
        except GitstoreError as exc:
            return outcome | {"state": "failed", "error": exc.detail}
        return outcome | {k: ended.get(k) for k in ("state", "error", "pause_seconds", "epoch")}

    def _save(self, status: DrainStatus) -> None:
        write_atomically(self.records / f"{status.node}.json", orjson.dumps(status.as_json()), durable=False)


def wait_for_move(
    peer: Peer, repo: str, *, timeout: float, pause: float, seen: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Poll node `peer`'s status of the move of `repo` until it ends (done or failed); raises
    MoveFailed if it does not within `timeout` seconds. `seen` hears each status polled."""
    deadline = time.monotonic() + timeout
    while True:
        answer = peer.call("GET", f"/internal/cluster/moves/{repo}")
        if answer.status == 200 and isinstance(answer.body, dict):
            if seen is not None:
                seen(answer.body)
            if answer.body.get("state") in ("done", "failed"):
                return answer.body
        if time.monotonic() > deadline:
            raise MoveFailed(f"the move of {repo} to node {peer.name} did not end within {timeout:g} s", name=repo)
        time.sleep(pause)


def _detail(body: Any) -> str:
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)

"""The relay's state on a repository's replicas (issue 24, ADR 0016): webhook subscriptions and
the sinks' cursors, so that a replica promoted over a dead owner goes on relaying where the
owner stopped, instead of with no webhooks and a RabbitMQ sink replaying the feed from its start.

The relay file is service state beside the repository, not content, so no round's record holds
it. The owner ships it whole (one consistent SQLite snapshot) to every in-sync replica:
- a subscription change, before it is answered: a replica that does not take it leaves the
  in-sync set first, as for a round, so a promoted replica holds every acknowledged change;
- cursors and the delivery log, each second when the file changed: a copy a second old only
  repeats a few events on failover, and the relay promises at least once anyway;
- inside the seal of a join, so no change falls between a replica's copy and its joining.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gitstore.cluster.peers import send_to_each
from gitstore.cluster.replica_set import drop_from_in_sync
from gitstore.errors import GitstoreError, NotOwner
from gitstore.relay.api import install_snapshot, register_shipper, signature, snapshot, unregister_shipper

if TYPE_CHECKING:
    from gitstore.cluster.node import ClusterNode

__all__ = ["RelayCopies"]

log = logging.getLogger("gitstore.cluster")

CONTROL = "gitstore"  # the relay file's folder in a git dir (GitRepository.control_dir)
TICK_SECONDS = 1.0


class RelayCopies:
    """Node `node`'s shipping of the relay files of the repositories it owns."""

    def __init__(self, node: ClusterNode, pool: Executor, seconds: float) -> None:
        self.node = node
        self._pool = pool
        self._seconds = seconds
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._shipped: dict[str, tuple[int, ...]] = {}  # by repository: the file's signature last shipped

    def start(self, stop: threading.Event) -> None:
        """Ship changed relay files every second on a thread of its own, until `stop` is set: a
        replica slow to answer holds up these copies, never the replication watcher's failover."""

        def run() -> None:
            while not stop.wait(TICK_SECONDS):
                try:
                    self.tick()
                except Exception:
                    log.exception("shipping relay state from node %s failed", self.node.name)

        threading.Thread(target=run, name="gitstore-relay-copies", daemon=True).start()

    def serve(self, name: str, git_dir: str) -> None:
        register_shipper(git_dir, lambda: self.ship(name, git_dir, urgent=True))

    def stop_serving(self, name: str, git_dir: str) -> None:
        unregister_shipper(git_dir)
        self._shipped.pop(name, None)

    @contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """No shipping of `name`'s relay file for the block (a seal: its snapshot is the last)."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def snapshot_of(self, git_dir: str | Path) -> bytes | None:
        return snapshot(Path(git_dir) / CONTROL)

    def ship(self, name: str, git_dir: str, *, urgent: bool) -> None:
        """Hand the relay file of `name` to its in-sync replicas. `urgent` (a subscription
        changed, not answered yet): a replica that does not take it leaves the in-sync set, or
        this raises (ReplicationFailed, NotOwner) and the change is not acknowledged. Otherwise
        a failure is logged and the next tick tries again."""
        node = self.node
        with self.paused(name):
            mark = signature(Path(git_dir) / CONTROL)
            data = self.snapshot_of(git_dir)
            epoch = node.fences.epoch(name)
            if data is None or epoch is None or node.replication.demoted(name):
                if urgent and (epoch is None or node.replication.demoted(name)):
                    raise NotOwner(f"node {node.name} does not own {name!r}", name=name)
                return
            checked = node.plane.check_owner(name, node.name, epoch, incarnation=node.plane.incarnation)
            failed = send_to_each(
                node.name,
                node.secret,
                self._pool,
                checked.in_sync,
                f"/internal/cluster/replicas/{name}/relay",
                data,
                {"Gitstore-Epoch": str(epoch)},
                timeout=self._seconds,
            )
            for target, why in failed.items():
                log.warning("replica %s did not take the relay state of %s: %s", target, name, why)
            if failed and not urgent:
                return  # tried again next tick
            if failed:
                drop_from_in_sync(node.plane, name, node.name, epoch, list(failed))  # or ReplicationFailed
                log.warning("replica(s) %s of %s left the in-sync set", ", ".join(failed), name)
            self._shipped[name] = mark

    def tick(self) -> None:
        """Ship the relay file of each repository owned here that changed since it was last
        shipped (a cursor stored, a delivery logged)."""
        folder = self.node.store.data_dir
        for name in self.node.fences.guarded():
            git_dir = folder / f"{name}.git"
            mark = signature(git_dir / CONTROL)
            if not mark or self._shipped.get(name) == mark:
                continue
            try:
                self.ship(name, str(git_dir), urgent=False)
            except GitstoreError as exc:
                log.warning("relay state of %s not shipped: %s", name, exc.detail)

    def receive(self, name: str, epoch: int, data: bytes) -> None:
        """A replica's side: take the relay file of `name` from its owner at `epoch`, in place of
        the one its copy has. ReplicaOutOfSync if the copy is not in sync (or is being promoted);
        OSError if the disk refuses; ValueError if `data` is no SQLite database."""
        with self.node.replication.in_sync_copy(name, epoch) as (path, _):
            install_snapshot(path / CONTROL, data)

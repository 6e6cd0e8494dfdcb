"""Moving a repository to another node while writes go on (issue 23, ADR 0015): the moving
node's side. The node a repository moves to runs the move (it pulls), each on a thread of its
own, and keeps its status in `<data>/.cluster-moves/<repo>.json` (every worker can answer for it,
and it outlives a restart).

    begin     the control plane marks the repository moving (UnknownNode, NodeDown,
              MoveInProgress, MoveToOwner are refused here, before anything is copied)
    copying   rounds of snapshot + git fetch into a copy built aside (gitstore.cluster.staging),
              while the owner goes on writing, until a round brings little
    fencing   the control plane bumps the epoch: from now on no write of the owner passes its
              fencing check (writes answer 503 NotOwner; reads go on)
    sealing   the owner takes and lets go of every lock of the repository, then snapshots it;
              the last fetch must bring the copy to exactly the sealed refs
    placing   the copy's index, relay state and public copy are its own; it is renamed into
              place and guarded at the new epoch
    flipped   the control plane names this node the owner: writes resume, here
    done      the old owner was told: it unguarded the repository and set its copy aside

Anything that fails before the flip undoes the move: the copy is removed, the control plane
puts the repository back on its owner (a fenced epoch stays bumped; the owner guards it at the
new one), and the owner serves on as before. The owner's copy is set aside only after the flip.
A move cannot finish without its owner: the sealed snapshot is the owner's word that nothing
moved after the fence (replicas, issue 24, will make that a quorum's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gitstore.cluster.peers import Peer, PeerSource, peer_of
from gitstore.cluster.staging import CopyRound, StagingCopy, staging_folders
from gitstore.errors import ControlPlaneUnavailable, GitstoreError, MoveFailed, MoveInProgress
from gitstore.storage.api import RefList, write_atomically

if TYPE_CHECKING:
    from gitstore.cluster.control import Route
    from gitstore.cluster.node import ClusterNode

__all__ = ["MoveSettings", "MoveStatus", "Moves", "digest_of"]

log = logging.getLogger("gitstore.cluster")

RECORDS = ".cluster-moves"
#: States a move can no longer leave.
ENDED = ("done", "failed")


@dataclass(frozen=True)
class MoveSettings:
    """How a move paces itself. `small` refs moved in a round end the copying rounds (at most
    `rounds` of them, within `copy_seconds`); a seal is asked for again for up to
    `seal_patience` seconds while the owner is busy or silent (paused), each ask waiting
    `seal_seconds`; `flip_patience` is how long the flip waits out a control plane that does
    not answer; a fetch that moves nothing for `stall_seconds` fails."""

    rounds: int = 6
    small: int = 64
    copy_seconds: float = 1800.0
    seal_seconds: float = 15.0
    seal_patience: float = 60.0
    flip_patience: float = 30.0
    stall_seconds: float = 30.0


@dataclass
class MoveStatus:
    """Where a move is. Times are Unix seconds; `pause_seconds` is the time from the fence to
    the flip, when no write of the repository could succeed."""

    repository: str
    source: str
    target: str
    state: str = "copying"
    started_at: float = field(default_factory=time.time)
    epoch: int | None = None
    fenced_at: float | None = None
    flipped_at: float | None = None
    finished_at: float | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    sealed_refs: int | None = None
    sealed_digest: str | None = None
    source_gave_up: bool | None = None
    source_unchanged: bool | None = None
    error: str | None = None
    #: Seconds each step inside the pause took: fence, seal (the last round), place, own, flip.
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def pause_seconds(self) -> float | None:
        if self.fenced_at is None:
            return None
        return (self.flipped_at or self.finished_at or time.time()) - self.fenced_at

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"pause_seconds": self.pause_seconds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MoveStatus:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def digest_of(refs: RefList) -> str:
    """One sha256 of a sorted ref list: two sides compare it instead of the whole list."""
    h = hashlib.sha256()
    for name, target in refs:
        h.update(f"{target} {name}\n".encode())
    return h.hexdigest()


class Moves:
    """The moves node `node` runs, as the node repositories move to."""

    def __init__(self, node: ClusterNode, settings: MoveSettings | None = None) -> None:
        self.node = node
        self.settings = settings or MoveSettings()
        self.records = node.store.data_dir / RECORDS
        self.records.mkdir(exist_ok=True)
        self._running: dict[str, threading.Thread] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()

    # -- asking ---------------------------------------------------------------------------------

    def start(self, repo: str) -> MoveStatus:
        """Begin moving `repo` here, and carry on in the background. Raises RepositoryNotFound,
        UnknownNode, NodeDown (this node is not active), MoveInProgress, MoveToOwner."""
        route = self.node.plane.begin_move(repo, self.node.name)
        status = MoveStatus(repo, route.owner, self.node.name)
        self._save(status)
        thread = threading.Thread(target=self._run, args=(status, route), name=f"move {repo}", daemon=True)
        with self._guard:
            self._running[repo] = thread
        thread.start()
        return status

    def status(self, repo: str) -> MoveStatus | None:
        """The newest move of `repo` to this node, if it ran one."""
        try:
            return MoveStatus.from_json(orjson.loads((self.records / f"{repo}.json").read_bytes()))
        except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
            return None

    def wait(self, repo: str, timeout: float) -> MoveStatus | None:
        """The move's status once it ended, or as it is when `timeout` runs out."""
        with self._guard:
            thread = self._running.get(repo)
        if thread is not None:
            thread.join(timeout)
        return self.status(repo)

    def running(self, repo: str) -> bool:
        with self._guard:
            thread = self._running.get(repo)
        return thread is not None and thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """The node is stopping: moves still copying are undone at their next round (the owner
        serves on); one already fenced is given `timeout` seconds to finish."""
        self._stopping.set()
        with self._guard:
            running = list(self._running.values())
        deadline = time.monotonic() + timeout
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))

    def recover(self) -> list[str]:
        """At start: moves to this node that a stop or a kill left unfinished are undone (the
        owner serves on), their copies removed. Returns the repositories whose move was undone."""
        undone = []
        for folder in staging_folders(self.node.store.data_dir):
            shutil.rmtree(folder, ignore_errors=True)
        for route in self.node.plane.routes():
            if route.move_target == self.node.name and route.state in ("moving", "fenced"):
                if not self.running(route.repo):
                    self._undo_unfinished(route)
                    undone.append(route.repo)
        return undone

    # -- the move itself ----------------------------------------------------------------------

    def _run(self, status: MoveStatus, route: Route) -> None:
        repo = status.repository
        copy = StagingCopy(
            self.node.store.data_dir, repo, uuid.uuid4().hex[:12], stall_seconds=self.settings.stall_seconds
        )
        peer = peer_of(self.node, route.owner)
        try:
            placed = self._prepare(status, copy, peer)
        except Exception as exc:  # whatever it was, the move must not stay half done
            self._failed(status, exc)
            self._undo(status, copy, placed=self._final(repo).exists() and status.state == "placing")
            return
        finally:
            copy.remove()
        assert placed and status.epoch is not None
        try:
            with _step(status, "flip"):
                self._flip(repo, status.epoch)
        except MoveInProgress as exc:  # the control plane says it is not ours to flip: undo
            self._failed(status, exc)
            self._undo(status, StagingCopy(self.node.store.data_dir, repo, "undo"), placed=True)
            return
        except ControlPlaneUnavailable as exc:
            # Flipped or not, nobody can say while PostgreSQL is away: the copy stays in place
            # and guarded (it writes only if the control plane names it the owner), the owner
            # keeps its own; `recover` sorts it out at the next start.
            self._failed(status, exc, "the flip's outcome is unknown")
            return
        status.flipped_at = time.time()
        self._phase(status, "flipped")
        self._tell_source(status, peer)
        status.finished_at = time.time()
        self._phase(status, "done")
        log.info(
            "moved %s from %s to %s; writes paused %.3f s", repo, status.source, status.target, status.pause_seconds
        )

    def _prepare(self, status: MoveStatus, copy: StagingCopy, peer: Peer) -> bool:
        """Everything up to the flip: copy, fence, seal, place. True once placed."""
        repo = status.repository
        self._copy(status, copy, PeerSource(peer, repo))
        copy.flush()
        if self._stopping.is_set():
            raise MoveFailed(f"node {self.node.name} is stopping", name=repo)
        self._phase(status, "fencing")
        with _step(status, "fence"):
            status.epoch = self.node.plane.fence(repo)
        status.fenced_at = time.time()
        self._phase(status, "sealing")
        patient = PeerSource(peer, repo, patience=self.settings.seal_patience, call_seconds=self.settings.seal_seconds)
        with _step(status, "seal"):
            self._record(status, copy.catch_up(patient, seal=True))
        assert copy.sealed is not None
        status.sealed_refs, status.sealed_digest = len(copy.sealed), digest_of(copy.sealed)
        self._phase(status, "placing")
        with _step(status, "place"):
            copy.place(self._final(repo))
        with _step(status, "own"):
            self.node.took_ownership(repo, status.epoch)
        return True

    def _copy(self, status: MoveStatus, copy: StagingCopy, source: PeerSource) -> None:
        """Rounds until one brings at most `small` refs (the first brings them all), at most
        `rounds` of them, within `copy_seconds`; the last must leave the copy agreeing with a
        snapshot, so that little is left to do once writes pause."""
        deadline = time.monotonic() + self.settings.copy_seconds
        for number in range(1, self.settings.rounds + 1):
            if self._stopping.is_set():
                raise MoveFailed(f"node {self.node.name} is stopping", name=status.repository)
            done = copy.catch_up(source)
            self._record(status, done)
            small = done.refs_moved <= self.settings.small or number == self.settings.rounds
            if done.consistent and (small or time.monotonic() > deadline):
                return
        raise MoveFailed(f"the copy of {status.repository} never agreed with a snapshot of its owner")

    def _flip(self, repo: str, epoch: int) -> None:
        """Name this node the owner. A control plane that drops the answer may have flipped it
        all the same: the route says."""
        deadline = time.monotonic() + self.settings.flip_patience
        while True:
            try:
                self.node.plane.finish_move(repo, self.node.name, epoch)
                return
            except MoveInProgress:
                route = self.node.plane.route(repo)
                if route is not None and route.owner == self.node.name and route.epoch == epoch:
                    return  # an earlier try went through
                raise
            except ControlPlaneUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _tell_source(self, status: MoveStatus, peer: Peer) -> None:
        """The old owner unguards the repository and sets its copy aside, answering the refs it
        held then: the sealed ones, unless a write got past the fence (it never should)."""
        for attempt in range(5):
            try:
                answer = peer.call("POST", f"/internal/cluster/repositories/{status.repository}/gave-up")
            except MoveFailed as exc:
                log.warning("node %s did not hear it gave up %s: %s", peer.name, status.repository, exc.detail)
                time.sleep(0.2 * 2**attempt)
                continue
            if answer.status == 200 and isinstance(answer.body, dict):
                status.source_gave_up = True
                status.source_unchanged = answer.body.get("digest") == status.sealed_digest
                if not status.source_unchanged:
                    log.error("node %s's copy of %s moved after its seal", peer.name, status.repository)
                return
            log.warning("node %s refused to give up %s: %s", peer.name, status.repository, answer.body)
            break
        status.source_gave_up = False

    def _failed(self, status: MoveStatus, exc: BaseException, why: str = "") -> None:
        detail = exc.detail if isinstance(exc, GitstoreError) else f"{type(exc).__name__}: {exc}"
        log.error("moving %s from node %s failed: %s", status.repository, status.source, detail, exc_info=exc)
        status.error = f"{why}: {detail}" if why else detail
        status.finished_at = time.time()
        self._phase(status, "failed")

    def _undo(self, status: MoveStatus, copy: StagingCopy, *, placed: bool) -> None:
        """Before the flip: the copy goes (out of the data directory first, if it was placed),
        and the repository goes back to its owner in the control plane."""
        repo = status.repository
        if placed:
            self.node.fences.unguard(repo)
            self.node.store.drop(repo)
            copy.folder.mkdir(parents=True, exist_ok=True)
            os.rename(self._final(repo), copy.folder / "placed.git")
        copy.remove()
        self._abort(repo)

    def _undo_unfinished(self, route: Route) -> None:
        """A move to this node that was running when it stopped: undone in the control plane,
        and a copy it had already placed set aside (never served: the owner is the old one)."""
        repo = route.repo
        if self._final(repo).exists():
            self.node.gave_up(repo)
        self._abort(repo)
        status = self.status(repo) or MoveStatus(repo, route.owner, self.node.name)
        if status.state not in ENDED:
            self._failed(status, MoveFailed("the node stopped during the move"))

    def _abort(self, repo: str) -> None:
        deadline = time.monotonic() + self.settings.flip_patience
        while True:
            try:
                self.node.plane.abort_move(repo)
                return
            except ControlPlaneUnavailable as exc:
                if time.monotonic() > deadline:
                    log.error("the move of %s could not be undone in the control plane: %s", repo, exc.detail)
                    return
                time.sleep(0.5)

    # -- helpers --------------------------------------------------------------------------------

    def _final(self, repo: str) -> Path:
        return self.node.store.data_dir / f"{repo}.git"

    def _record(self, status: MoveStatus, done: CopyRound) -> None:
        status.rounds.append(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in dataclasses.asdict(done).items()}
        )
        self._save(status)

    def _phase(self, status: MoveStatus, state: str) -> None:
        status.state = state
        self._save(status)

    def _save(self, status: MoveStatus) -> None:
        write_atomically(self.records / f"{status.repository}.json", orjson.dumps(status.as_json()), durable=False)


@contextmanager
def _step(status: MoveStatus, name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        status.steps[name] = round(time.monotonic() - started, 4)

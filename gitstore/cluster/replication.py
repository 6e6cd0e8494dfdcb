"""Replicas on the nodes (issue 24, ADR 0016): the owner ships each commit round's journal record
to every in-sync replica before its refs move; a replica appends it durably and applies it; a
replica out of sync catches up by a copy and joins under a short seal; a silent owner's in-sync
replica promotes itself.

The owner's side (`serve`): the journal calls the shipper after its own append is durable and
before the refs move (gitstore.storage.replication). The fencing check of that round read the
in-sync set in the same query; the record goes to each of those nodes in parallel, with the
repository's epoch and the next sequence number. A node that does not take it within
SHIP_SECONDS leaves the in-sync set by a compare-and-swap on owner and epoch BEFORE the round
goes on; if that fails too the round is refused (ReplicationFailed, 503) and the journal takes
its record back. Nothing is ever acknowledged that an in-sync replica lacks.

A replica's side (`receive`): its copy is `<data>/.replicas/<repo>.git`, out of the Store's sight
(nothing serves or repairs it, so it never writes on its own), with `replication.json` beside
its refs: the epoch and sequence number of the last record it took. A record of an older epoch,
or not the next one, is refused: the owner drops it and it catches up again.

Joining (`catch_up`, on the replica; `seal_for`, on the owner): a clone of the owner's node-only
remote; then the owner takes every lock of the repository (the seal, as a move's), tells the
replica its refs, sequence number and relay file, waits while the replica fetches what it lacks
and sets its refs to exactly those, and adds it to the in-sync set before letting go: no round
falls between. (The relay file's own shipping is gitstore.cluster.relay_copies.)

Failover (`_watch`, every second): a replica in sync whose owner has been silent for
FAILOVER_SECONDS refuses older rounds from then on, wins the promotion by compare-and-swap in
PostgreSQL (epoch + 1), moves its copy into the data directory, guards it at the new epoch and
repairs it (the index caught up with the refs), and serves. The old owner, when it returns or
wakes, finds itself a replica out of sync: its copy is set aside (never merged) and it catches up.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gitstore.cluster.peers import Peer, send_to_each
from gitstore.cluster.relay_copies import CONTROL, RelayCopies
from gitstore.cluster.replica_set import (
    Duty,
    drop_from_in_sync,
    drop_lost_replicas,
    join_in_sync,
    place_replicas,
    promote,
    replica_duties,
    short_of_replicas,
)
from gitstore.environment import seconds, whole_number
from gitstore.errors import (
    GitstoreError,
    MoveFailed,
    NotAReplica,
    NotOwner,
    PromotionLost,
    ReplicaBehind,
    ReplicaOutOfSync,
    ReplicationFailed,
)
from gitstore.relay.api import install_snapshot
from gitstore.storage.api import (
    LOCK_ORDER,
    RefList,
    clone_refs,
    commit_id,
    fetch_objects,
    fsync_dir,
    fsync_method,
    in_order,
    is_ancestor,
    objects_held,
    pin_refs,
    receive_record,
    ref_list,
    refs_differing,
    register_shipper,
    release_journal,
    sync_file_system,
    unregister_shipper,
    write_atomically,
)

if TYPE_CHECKING:
    from gitstore.cluster.node import ClusterNode
    from gitstore.repository import ContentRepository

__all__ = ["REPLICAS", "SHIP_SECONDS", "Replication"]

log = logging.getLogger("gitstore.cluster")

REPLICAS = ".replicas"
STATE = "replication.json"
#: How long the owner waits for a replica to take a round before dropping it from the in-sync set.
SHIP_SECONDS = seconds("GITSTORE_SHIP_SECONDS", 2.0)
WATCH_SECONDS = 1.0
#: A catch-up that failed is tried again after this long (a replica whose disk is full).
RETRY_SECONDS = 5.0
#: Copies (the owner's included) a round must be durable on to be acknowledged, at most the
#: repository's factor. 1 (the default): the owner writes on alone while its replicas catch up;
#: 2 or more: a round refuses (503) below that many in-sync copies instead (ADR 0016's policy).
MIN_IN_SYNC = whole_number("GITSTORE_MIN_IN_SYNC", 1, minimum=1)


@dataclass
class Position:
    """The last round a copy holds: its owner's epoch and its sequence number."""

    epoch: int
    seq: int


def _enough(name: str, copies: int, needed: int) -> None:
    """ReplicationFailed if `copies` durable copies of a round are fewer than `needed`."""
    if copies < needed:
        raise ReplicationFailed(
            f"only {copies} in-sync cop{'y' if copies == 1 else 'ies'} of {name!r}, "
            f"{needed} needed (GITSTORE_MIN_IN_SYNC): the write was not acknowledged",
            name=name,
            retry_after=2,
        )


class Replication:
    """Node `node`'s replicas, and the shipping of the repositories it owns."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self._positions: dict[str, Position] = {}  # by git dir
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._promoting: set[str] = set()
        self._joining: dict[str, Path] = {}
        self._catching_up: dict[str, threading.Thread] = {}
        self._failed_at: dict[str, float] = {}
        self._demoted: set[str] = set()  # owned here until a promotion elsewhere: set aside once caught up
        self._in_sync_here: set[str] = set()  # copies this node knows in sync (reads served)
        self._readers: dict[str, tuple[int, ContentRepository]] = {}  # by name: (inode, handle)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gitstore-ship")
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="gitstore-replication", daemon=True)
        #: The relay's file (webhook subscriptions, sinks' cursors) on the replicas, beside the rounds.
        self.relay = RelayCopies(node, self._pool, SHIP_SECONDS)
        #: Seconds from a promotion's compare-and-swap to serving, by repository (the last one).
        self.promotions: dict[str, float] = {}

    @property
    def folder(self) -> Path:
        return self.node.store.data_dir / REPLICAS

    def start(self) -> None:
        self.folder.mkdir(exist_ok=True)
        for leftover in self.folder.glob(".joining-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self._watcher.start()
        self.relay.start(self._stop)

    def stop(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def copy_of(self, repo: str) -> Path:
        return self.folder / f"{repo}.git"

    # -- the owner's side -----------------------------------------------------------------------

    def serve(self, repo: ContentRepository) -> None:
        """Ship every round of `repo` (owned here, guarded) to its in-sync replicas."""
        name, path = repo.name, str(repo.path)
        register_shipper(path, lambda record: self._ship(name, path, record))
        self.relay.serve(name, path)

    def stop_serving(self, repo: str, path: str | os.PathLike[str]) -> None:
        unregister_shipper(path)
        self.relay.stop_serving(repo, os.fspath(path))
        self._positions.pop(os.path.normpath(os.fspath(path)), None)

    def _ship(self, name: str, path: str, record: bytes) -> None:
        node = self.node
        epoch = node.fences.epoch(name)
        if epoch is None:
            raise NotOwner(f"node {node.name} does not guard {name!r}", name=name)
        checked = node.fences.in_sync_checked(name)
        if checked is None:  # a round that did not pass through a check on this thread
            checked = node.plane.check_owner(name, node.name, epoch, incarnation=node.plane.incarnation)
        targets, needed = checked.in_sync, min(MIN_IN_SYNC, checked.factor)
        if not targets:
            _enough(name, 1, needed)
            return  # alone: a replica that joins later takes the position as it is then
        position = self._position(path)
        seq = position.seq + 1
        failed = send_to_each(
            node.name,
            node.secret,
            self._pool,
            targets,
            f"/internal/cluster/replicas/{name}/records",
            record,
            {"Gitstore-Epoch": str(epoch), "Gitstore-Seq": str(seq)},
            timeout=SHIP_SECONDS,
        )
        for target, why in failed.items():
            log.warning("replica %s did not take round %d of %s: %s", target, seq, name, why)
        if failed:
            drop_from_in_sync(node.plane, name, node.name, epoch, list(failed))  # or ReplicationFailed: refused
            log.warning("replica(s) %s of %s left the in-sync set", ", ".join(failed), name)
            _enough(name, 1 + len(targets) - len(failed), needed)
        self._save(path, Position(epoch, seq))

    def seal_for(self, name: str, replica: str) -> int:
        """The owner's side of a join: under every lock of `name`, hand `replica` the refs and
        position, wait for its copy to equal them, and add it to the in-sync set. The number of
        refs."""
        node = self.node
        epoch = node.fences.epoch(name)
        if epoch is None or name in self._demoted:
            raise NotOwner(f"node {node.name} does not own {name!r}", name=name)
        if fsync_method() != "journal":
            raise ReplicationFailed(f"node {node.name} does not journal its writes, so it cannot ship them", name=name)
        repo = node.store.repository(name)
        from gitstore.cluster.peers import peer_of

        peer = peer_of(node, replica, alive=True)
        with in_order(repo.storage, *LOCK_ORDER), self.relay.paused(name):
            refs = ref_list(repo.path)
            position = self._position(str(repo.path))
            objects = base64.b64encode(objects_held(str(repo.path))).decode()
            relay = self.relay.snapshot_of(repo.path)  # the relay file too: no change between
            sealed = {"owner": node.name, "refs": refs, "epoch": epoch, "seq": position.seq, "objects": objects}
            sealed["relay"] = None if relay is None else base64.b64encode(relay).decode()
            answer = peer.call("POST", f"/internal/cluster/replicas/{name}/sealed", sealed)
            if answer.status != 200:
                raise MoveFailed(f"node {replica} could not take the sealed copy of {name}: {answer.body}", name=name)
            if not join_in_sync(node.plane, name, node.name, epoch, replica):
                raise NotOwner(f"node {node.name} no longer owns {name!r} at epoch {epoch}", name=name)
        log.info("node %s joined the in-sync set of %s at round %d", replica, name, position.seq)
        return len(refs)

    # -- a replica's side -----------------------------------------------------------------------

    def receive(self, name: str, epoch: int, seq: int, record: bytes) -> None:
        """Take round `seq` of `name` from its owner at `epoch`. Raises ReplicaOutOfSync (and
        takes nothing) if this copy is not the next one's place; OSError if the disk refuses.
        Either way this copy serves no more reads: its owner drops it from the in-sync set."""
        try:
            self._receive(name, epoch, seq, record)
        except BaseException:
            self._in_sync_here.discard(name)
            raise

    def _receive(self, name: str, epoch: int, seq: int, record: bytes) -> None:
        with self.in_sync_copy(name, epoch) as (path, position):
            if seq != position.seq + 1:
                raise ReplicaOutOfSync(f"round {seq} of {name!r} after round {position.seq}: a gap", name=name)
            receive_record(str(path), record)
            self._save(str(path), Position(epoch, seq))

    @contextmanager
    def in_sync_copy(self, name: str, epoch: int) -> Iterator[tuple[Path, Position]]:
        """This node's copy of `name` and its position, for its owner at `epoch` to change, held
        against promotion and other rounds for the block. ReplicaOutOfSync if it is owned here
        or being promoted, holds nothing in sync, or has taken a newer epoch's rounds."""
        with self._lock_of(name):
            if name in self._promoting or self._owned_here(name):
                raise ReplicaOutOfSync(f"node {self.node.name} owns {name!r} or is taking it over", name=name)
            path = self.copy_of(name)
            position = self._position(str(path)) if (path / STATE).is_file() else None
            if position is None:
                raise ReplicaOutOfSync(f"node {self.node.name} holds no copy of {name!r} in sync", name=name)
            if epoch < position.epoch:
                raise ReplicaOutOfSync(f"round of epoch {epoch}, older than {position.epoch}", name=name)
            yield path, position

    def sealed(
        self, name: str, owner: str, refs: RefList, epoch: int, seq: int, objects: bytes, relay: bytes | None = None
    ) -> None:
        """The last step of a join, while the owner holds its seal: take the `objects` its
        journal holds (a record), fetch what the copy lacks, set its refs to exactly `refs`,
        take its `relay` file, make it durable and put it in place at `epoch`/`seq`."""
        staging = self._joining.get(name)
        if staging is None:
            raise ReplicaOutOfSync(f"node {self.node.name} is not joining {name!r}", name=name)
        from gitstore.cluster.peers import peer_of

        peer = peer_of(self.node, owner)
        mine = dict(ref_list(staging))
        wants = [target for ref, target in refs if mine.get(ref) != target and not target.startswith("ref: ")]
        haves = [target for target in mine.values() if not target.startswith("ref: ")]
        if wants:
            fetch_objects(staging, peer.fetch_url(name), wants, haves[:256], password=peer.fetch_password(name))
        receive_record(str(staging), objects)
        release_journal(str(staging))
        if pin_refs(staging, refs) is None or refs_differing(ref_list(staging), refs):
            raise MoveFailed(f"the copy of {name} does not hold what its owner sealed", name=name)
        if relay is not None:
            install_snapshot(staging / CONTROL, relay)
        sync_file_system(staging)
        with self._lock_of(name):
            final = self.copy_of(name)
            self._discard(final)
            self._save(str(staging), Position(epoch, seq), durable=True)
            os.rename(staging, final)
            fsync_dir(final.parent)
            self._positions[os.path.normpath(str(final))] = Position(epoch, seq)
            self._in_sync_here.add(name)
        if name in self._demoted:
            self._set_aside_demoted(name)

    def _discard(self, path: Path) -> None:
        self._in_sync_here.discard(path.name.removesuffix(".git"))
        if path.exists():
            release_journal(str(path))
            self._positions.pop(os.path.normpath(str(path)), None)
            aside = path.with_name(f".discarded-{path.name}-{uuid.uuid4().hex[:8]}")
            os.rename(path, aside)
            shutil.rmtree(aside, ignore_errors=True)

    def catch_up(self, duty: Duty) -> None:
        """Copy `duty.repo` from its owner and join its in-sync set (the owner seals)."""
        name = duty.repo
        folder = self.folder / f".joining-{name}-{uuid.uuid4().hex[:12]}"
        staging = folder / "repo.git"
        peer = Peer(self.node.name, self.node.secret, duty.owner, duty.owner_url)
        try:
            folder.mkdir(parents=True)
            clone_refs(staging, peer.fetch_url(name), description=duty.description, password=peer.fetch_password(name))
            self._joining[name] = staging
            answer = peer.call("POST", f"/internal/cluster/replicas/{name}/join", {"node": self.node.name})
            if answer.status != 200:
                raise MoveFailed(f"node {duty.owner} did not seal {name} for this replica: {answer.body}", name=name)
            self._failed_at.pop(name, None)
            log.info("node %s is an in-sync replica of %s", self.node.name, name)
        finally:
            self._joining.pop(name, None)
            shutil.rmtree(folder, ignore_errors=True)

    # -- reads ----------------------------------------------------------------------------------

    def reads_served(self, name: str) -> bool:
        """Whether this node's copy of `name` is in sync (as it last heard): it answers live reads."""
        return name in self._in_sync_here and name not in self._promoting

    def replica_repository(self, name: str) -> ContentRepository:
        """This node's replica of `name`, to read (never written: nothing guards it, nothing
        repairs it; rounds move its refs)."""
        from gitstore.repository import ContentRepository

        path = self.copy_of(name)
        inode = path.stat().st_ino
        found = self._readers.get(name)
        if found is None or found[0] != inode:
            found = self._readers[name] = (inode, ContentRepository(name, path))
        return found[1]

    def holds_after(self, name: str, seen: str, answered: str | None) -> bool:
        """Whether commit `answered` is `seen` or descends from it in this replica: an answer
        no older than what the client saw (read-your-writes)."""
        if answered is None:
            return False
        try:
            git = self.replica_repository(name).storage.git
            return is_ancestor(git, commit_id(seen), commit_id(answered))
        except Exception:  # an id unknown here (not replicated yet) or not a commit id at all
            return False

    # -- failover -------------------------------------------------------------------------------

    def promote(self, duty: Duty, *, forced: bool = False) -> int | None:
        """Take `duty.repo` over from its silent owner; the new epoch, or None if this node did
        not win. Raises ReplicaBehind if this node is not in its in-sync set.

        The copy goes into the data directory first, guarded at the epoch it is about to win:
        a write forwarded here the moment the promotion lands finds it there (and refused
        until it is won), never a missing repository."""
        name, node = duty.repo, self.node
        with self._lock_of(name):
            self._promoting.add(name)
        try:
            started = time.monotonic()
            final = self._into_place(name)
            repo = node.store.repository(name)
            node.fences.guard(repo, duty.epoch + 1)
            try:
                epoch = promote(node.plane, name, node.name, duty.epoch, forced=forced)
            except BaseException:
                self._back_out(name, final)
                raise
            if epoch is None:
                self._back_out(name, final)
                return None
            from gitstore.upkeep.api import repair

            node.guard(repo, epoch)
            repair(repo)
            node.routes.invalidate(name)
            self.promotions[name] = time.monotonic() - started
            why = "an operator asked" if forced else f"{duty.owner} was silent"
            log.warning("node %s is the owner of %s at epoch %d (%s)", node.name, name, epoch, why)
            return epoch
        finally:
            with self._lock_of(name):
                self._promoting.discard(name)

    def take_over(self, name: str) -> int:
        """An operator's promotion of this node's replica of `name`, without waiting for its
        owner to fall silent: a switchover before maintenance, or a failover not waited for. The
        same promotion as the watcher's (the old owner is fenced by the epoch and becomes a
        replica), so only an in-sync replica may take over. The epoch won."""
        duty = next((d for d in replica_duties(self.node.plane, self.node.name) if d.repo == name), None)
        if duty is None:
            raise NotAReplica(f"node {self.node.name} holds no replica of {name!r}", name=name, node=self.node.name)
        if not duty.in_sync:  # asked again under the row lock by the promotion itself
            raise ReplicaBehind(
                f"node {self.node.name} is not in the in-sync set of {name!r}: it may lack acknowledged writes",
                name=name,
                node=self.node.name,
            )
        epoch = self.promote(duty, forced=True)
        if epoch is None:
            raise PromotionLost(
                f"{name!r} changed while node {self.node.name} took it over (another node won, or it is moving)",
                name=name,
                node=self.node.name,
            )
        return epoch

    def _into_place(self, name: str) -> Path:
        self._in_sync_here.discard(name)
        node, copy = self.node, self.copy_of(name)
        release_journal(str(copy))
        self._positions.pop(os.path.normpath(str(copy)), None)
        final = node.store.data_dir / f"{name}.git"
        self._demoted.discard(name)
        node.store.drop(name)
        if final.exists():
            node.set_aside(name)
        os.rename(copy, final)
        fsync_dir(final.parent)
        return final

    def _back_out(self, name: str, final: Path) -> None:
        """The promotion was lost: the copy goes back to being a replica (its old path refusing
        whatever write was in flight there)."""
        self.node.store.drop(name)
        release_journal(str(final))
        os.rename(final, self.copy_of(name))
        fsync_dir(final.parent)
        self.node.fences.moved_away(name)

    def demote(self, name: str) -> None:
        """This node owned `name` and another was promoted meanwhile. Its guard stays (every
        write here fails its fence: 503, retried through the new owner), its route is
        forgotten (new requests are forwarded), its shipper and handle are dropped. Its copy,
        with whatever rounds it never got acknowledged, is set aside (never merged) once it is
        a replica in sync again: renaming it now would pull files from under requests in flight."""
        node = self.node
        self._demoted.add(name)
        self.stop_serving(name, node.store.data_dir / f"{name}.git")
        node.routes.invalidate(name)
        node.store.drop(name)
        log.warning("node %s lost %s to a promotion: it catches up as a replica", node.name, name)

    def _set_aside_demoted(self, name: str) -> None:
        node = self.node
        self._demoted.discard(name)
        node.store.drop(name)
        if (node.store.data_dir / f"{name}.git").exists():
            node.set_aside(name)
        node.fences.moved_away(name)  # a write still in flight meets a refusal, not a missing folder

    def demoted(self, name: str) -> bool:
        return name in self._demoted

    def _owned_here(self, name: str) -> bool:
        return self.node.fences.epoch(name) is not None and name not in self._demoted

    # -- the watcher ----------------------------------------------------------------------------

    def _watch(self) -> None:
        ticks = 0
        while not self._stop.wait(WATCH_SECONDS):
            ticks += 1
            try:
                self._tick(top_up=ticks % 5 == 1)
            except GitstoreError as exc:
                log.warning("replication watch of node %s: %s", self.node.name, exc.detail)
            except Exception:
                log.exception("replication watch of node %s failed", self.node.name)

    def _tick(self, *, top_up: bool) -> None:
        duties = replica_duties(self.node.plane, self.node.name)
        self._in_sync_here &= {duty.repo for duty in duties if duty.in_sync}
        for duty in duties:
            if duty.state != "active":
                continue
            if duty.in_sync and duty.owner_silent:
                try:
                    self.promote(duty)
                except GitstoreError as exc:
                    log.warning("node %s could not take %s over: %s", self.node.name, duty.repo, exc.detail)
            elif not duty.in_sync and not duty.owner_silent:
                self._start_catch_up(duty)
        if top_up:
            self._reclaim(duties)
            for name, gone in drop_lost_replicas(self.node.plane, self.node.name):
                log.warning(
                    "node %s: the replica of %s on %s is lost (silent, out of sync): placed again",
                    self.node.name,
                    name,
                    gone,
                )
            for name in short_of_replicas(self.node.plane, self.node.name):
                place_replicas(self.node.plane, name)

    def _reclaim(self, duties: list[Duty]) -> None:
        """Remove the copies of repositories this node is no longer a replica of: its place went
        to another node while it was away (drop_lost_replicas). A copy is never promoted without
        its row, so nothing else would ever read it."""
        held = {duty.repo for duty in duties}
        for copy in self.folder.glob("*.git"):
            name = copy.name.removesuffix(".git")
            if name in held or name in self._promoting:
                continue
            with self._lock_of(name):
                self._discard(copy)
            self._readers.pop(name, None)
            log.warning("node %s removed its copy of %s: it is no longer one of its replicas", self.node.name, name)

    def _start_catch_up(self, duty: Duty) -> None:
        name = duty.repo
        running = self._catching_up.get(name)
        if running is not None and running.is_alive():
            return
        if time.monotonic() - self._failed_at.get(name, -RETRY_SECONDS) < RETRY_SECONDS:
            return

        def run() -> None:
            try:
                self.catch_up(duty)
            except Exception as exc:  # whatever it was, try again later
                self._failed_at[name] = time.monotonic()
                detail = exc.detail if isinstance(exc, GitstoreError) else f"{type(exc).__name__}: {exc}"
                log.warning("node %s could not catch %s up: %s", self.node.name, name, detail)

        thread = threading.Thread(target=run, name=f"catch-up {name}", daemon=True)
        self._catching_up[name] = thread
        thread.start()

    # -- positions ------------------------------------------------------------------------------

    def _lock_of(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _position(self, path: str) -> Position:
        key = os.path.normpath(path)
        found = self._positions.get(key)
        if found is None:
            try:
                data: Any = orjson.loads(Path(key, STATE).read_bytes())
                found = Position(int(data["epoch"]), int(data["seq"]))
            except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                found = Position(0, 0)
            self._positions[key] = found
        return found

    def _save(self, path: str, position: Position, *, durable: bool = False) -> None:
        """A position behind the journal is safe (the next round is refused as a gap, and the copy
        catches up); so a round writes it without a flush, after its record is durable."""
        key = os.path.normpath(path)
        write_atomically(
            f"{key}/{STATE}", orjson.dumps({"epoch": position.epoch, "seq": position.seq}), durable=durable
        )
        self._positions[key] = position

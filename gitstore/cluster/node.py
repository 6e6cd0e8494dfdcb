"""The running node: joins the cluster, adopts and guards what it owns, heartbeats, listens.

`ClusterNode(...).start(store)` either finishes or raises with nothing left running (a node
never starts half-way): join (NodeNameClash if the name is another live process's), adopt each
local repository the control plane does not know yet, guard each repository this node owns,
then the heartbeat (every second) and LISTEN threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from gitstore.cluster.control import LIVENESS_SECONDS, ControlPlane, Route
from gitstore.cluster.fencing import Fences
from gitstore.cluster.notify import Listener
from gitstore.cluster.replica_set import default_factor, place_replicas, replicas_of
from gitstore.cluster.replication import Replication
from gitstore.cluster.routes import RouteCache
from gitstore.cluster.schema import CREDENTIALS_CHANNEL, ROUTES_CHANNEL
from gitstore.errors import ControlPlaneUnavailable, NodeNameClash, NotOwner, RepositoryExists, RepositoryNotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitstore.repository import ContentRepository
    from gitstore.store import Store

__all__ = ["SET_ASIDE", "ClusterNode"]

log = logging.getLogger("gitstore.cluster")

HEARTBEAT_SECONDS = 1.0
#: Where a node keeps the copies of repositories it gave up (inside its data directory; not a
#: `<name>.git`, so the Store does not list them). Deleted by an operator, never by gitstore.
SET_ASIDE = ".moved-away"


class ClusterNode:
    """This process as node `name` of the cluster whose control plane is `plane`."""

    def __init__(self, plane: ControlPlane, name: str, url: str) -> None:
        default_factor()  # a bad GITSTORE_REPLICATION_FACTOR stops the node now, not its first placement
        self.name = name
        self.url = url
        self.plane = plane
        self.routes = RouteCache(plane)
        self.fences = Fences(plane, name)
        self.secret = plane.secret()
        self.replication = Replication(self)
        self._store: Store | None = None
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="gitstore-cluster-heartbeat", daemon=True)
        self._credentials_changed: list[Callable[[], None]] = []
        self._listener = Listener(
            plane,
            {ROUTES_CHANNEL: self._route_changed, CREDENTIALS_CHANNEL: lambda _: self._credentials_did_change()},
            on_connect=self._listener_connected,
            on_disconnect=lambda: self.routes.set_trusted(False),
        )

    @property
    def store(self) -> Store:
        assert self._store is not None, "start the node first"
        return self._store

    # -- life -----------------------------------------------------------------------------------

    def start(self, store: Store) -> None:
        """Join, adopt, guard, then beat and listen. Raises NodeNameClash if another live process
        holds the name (after waiting out the heartbeat of one that just died),
        ControlPlaneUnavailable."""
        self._store = store
        self._join()
        try:
            self._adopt_and_guard(store)
        except BaseException:
            self.fences.unguard_all()
            with contextlib.suppress(ControlPlaneUnavailable):  # what failed may have been PostgreSQL
                self.plane.leave(self.name)
            raise
        self._heartbeat.start()
        self._listener.start()
        self.replication.start()
        log.info("node %s joined the cluster at %s (%s)", self.name, self.plane.where, self.url)

    def stop(self) -> None:
        self._stop.set()
        self.replication.stop()
        self._listener.stop()
        if self._heartbeat.is_alive():
            self._heartbeat.join(timeout=5)
        try:
            self.plane.leave(self.name)
        except ControlPlaneUnavailable as exc:
            log.warning("node %s could not say it stopped: %s", self.name, exc.detail)
        self.fences.unguard_all()

    def _join(self) -> None:
        # A node killed a moment ago (kill -9, then restarted) still looks alive for up to
        # LIVENESS_SECONDS: wait that out once before calling the name taken.
        deadline = time.monotonic() + LIVENESS_SECONDS + 1.0
        while True:
            try:
                self.plane.join(self.name, self.url)
                return
            except NodeNameClash:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _adopt_and_guard(self, store: Store) -> None:
        local = {repo.name: repo for repo in store.repositories()}
        routes = self.plane.adopt({name: repo.description for name, repo in local.items()}, self.name)
        self.routes.remember(routes.values())
        for name, repo in local.items():
            if routes[name].owner == self.name:
                self.guard(repo, routes[name].epoch)
            elif self.name in replicas_of(self.plane, name):
                # It owned this one and a replica was promoted while it was away: what it holds
                # past the last acknowledged round is discarded, never merged (ADR 0016).
                log.warning("repository %s was taken over by node %s: this copy is set aside", name, routes[name].owner)
                store.drop(name)
                self.set_aside(name)
            else:
                log.warning(
                    "repository %s is on this node's disk but lives on node %s: this copy is not served",
                    name,
                    routes[name].owner,
                )
        for route in routes.values():
            if route.owner == self.name and route.repo not in local:
                log.error("repository %s belongs to this node (%s) but is not on its disk", route.repo, self.name)

    # -- ownership ------------------------------------------------------------------------------

    def owns(self, repo: str) -> bool:
        """Whether this node owns `repo` (from the route cache: for routing, not for writing)."""
        try:
            route = self.routes.route(repo)
        except ControlPlaneUnavailable:  # never looked up, and PostgreSQL is away: what it guards
            return self.fences.epoch(repo) is not None
        return route is not None and route.owner == self.name

    def guard(self, repo: ContentRepository, epoch: int) -> None:
        """Write `repo` only as its owner at `epoch`, and ship its rounds to its in-sync replicas."""
        self.fences.guard(repo, epoch)
        self.replication.serve(repo)

    def took_ownership(self, repo: str, epoch: int) -> None:
        """A move brought `repo` here (its files in place): guard it at `epoch` and open it."""
        self.guard(self.store.repository(repo), epoch)
        self.routes.invalidate(repo)

    def gave_up(self, repo: str) -> None:
        """A move took `repo` away: forget its handle, set its copy aside (under SET_ASIDE in
        the data directory, not deleted). Its guard then refuses for good: a write still in
        flight here must meet the fence (and fail, 503), never a copy with no guard at all, nor
        a folder gone from under it."""
        self.routes.invalidate(repo)
        store = self.store
        self.replication.stop_serving(repo, store.data_dir / f"{repo}.git")
        store.drop(repo)
        if (store.data_dir / f"{repo}.git").exists():
            self.set_aside(repo)
        self.fences.moved_away(repo)

    def set_aside(self, repo: str) -> None:
        """Rename this node's copy of `repo` under SET_ASIDE (kept for an operator, not served)."""
        aside = self.store.data_dir / SET_ASIDE
        aside.mkdir(exist_ok=True)
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{time.monotonic_ns()}"
        os.rename(self.store.data_dir / f"{repo}.git", aside / f"{repo}.{stamp}.git")

    def create_repository(
        self, name: str, description: str = "", replication_factor: int | None = None
    ) -> ContentRepository:
        """Create `name` here if the control plane places it here (or already did: a request
        forwarded by the node that placed it), with `replication_factor` copies (None: the
        cluster's default, cut to the active nodes there are). Raises RepositoryExists, NotOwner
        (placed on another node), NoNodeAvailable, ReplicationFactorTooHigh,
        ControlPlaneUnavailable."""
        route = self.routes.refresh(name)
        placed_now = route is None
        if route is None:
            route = self.place(name, description, replication_factor)
        if route.owner != self.name:
            if placed_now:
                self.plane.forget(name, owner=route.owner)
            raise NotOwner(f"repository {name!r} is placed on node {route.owner}", name=name, node=route.owner)
        if not placed_now and self._on_disk(name):
            raise RepositoryExists(f"repository {name!r} already exists", name=name)
        try:
            repo = self.store.create_repository(name, description)
        except BaseException:
            self.plane.forget(name, owner=self.name)
            raise
        self.guard(repo, route.epoch)
        self.routes.remember([route])
        return repo

    def place(self, name: str, description: str = "", replication_factor: int | None = None) -> Route:
        """Register new repository `name` on the least-loaded node, and its replicas on others
        (`replication_factor` copies in all; None: the cluster's default, cut to the active nodes
        there are). Raises RepositoryExists, NoNodeAvailable, ReplicationFactorTooHigh (nothing
        registered), ControlPlaneUnavailable."""
        route = self.plane.place(name, description)
        try:
            factor = replication_factor or default_factor()
            place_replicas(self.plane, name, factor, strict=replication_factor is not None)
        except BaseException:
            self.plane.forget(name, owner=route.owner)
            raise
        return route

    def _on_disk(self, name: str) -> bool:
        try:
            self.store.repository(name)
        except RepositoryNotFound:
            return False
        return True

    # -- background -----------------------------------------------------------------------------

    def _beat(self) -> None:
        failing = False
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.plane.heartbeat(self.name)
                if failing:
                    log.warning("node %s reaches the control plane again", self.name)
                failing = False
            except ControlPlaneUnavailable as exc:
                if not failing:
                    log.warning("node %s cannot send its heartbeat: %s", self.name, exc.detail)
                failing = True
            except NodeNameClash as exc:
                # Another process took this name while this one was paused: it owns what this
                # one owned, and every guard here already fails (they name this incarnation).
                log.error("%s: this process no longer writes anything", exc.detail)
                failing = True

    def _route_changed(self, repo: str) -> None:
        self.routes.invalidate(repo)
        if repo == "*" or self.fences.epoch(repo) is None:
            return
        try:
            self._reconcile(repo, self.plane.route(repo))
        except ControlPlaneUnavailable:
            pass  # the next NOTIFY, or the reconnection, tries again

    def _listener_connected(self) -> None:
        self.routes.set_trusted(True)
        self._credentials_did_change()  # what changed while nobody listened is unknown
        try:
            routes = {route.repo: route for route in self.plane.routes()}
        except ControlPlaneUnavailable:
            return
        self.routes.remember(routes.values())
        for repo in self.fences.guarded():
            self._reconcile(repo, routes.get(repo))

    def _reconcile(self, repo: str, route: Route | None) -> None:
        """A repository this node guards whose move was aborted after its fence: this node owns
        it again at the bumped epoch, so it guards it at that one. (A repository that moved
        away keeps its old guard, which fails every write, until the move says `gave_up`.)"""
        guarded = self.fences.epoch(repo)
        if guarded is None or route is None:
            return
        if route.owner == self.name and route.state == "active" and route.epoch > guarded:
            log.info("node %s owns %s again, now at epoch %s", self.name, repo, route.epoch)
            self.guard(self.store.repository(repo), route.epoch)
        elif (
            route.owner != self.name
            and route.epoch > guarded
            and not self.replication.demoted(repo)
            and self.name in replicas_of(self.plane, repo)
        ):
            self.replication.demote(repo)

    def on_credentials_changed(self, listener: Callable[[], None]) -> None:
        """Call `listener` on each NOTIFY about credentials (and after LISTEN reconnects)."""
        self._credentials_changed.append(listener)

    def _credentials_did_change(self) -> None:
        for listener in self._credentials_changed:
            listener()

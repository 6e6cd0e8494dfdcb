"""The route cache: where each repository lives, as this node last heard from PostgreSQL.

An entry stays until a NOTIFY on `gitstore_routes` names its repository (or "*"), so a request
costs no round trip to PostgreSQL. A route can still be stale for the moment a NOTIFY takes:
the node it names then answers 421 and the forwarder refreshes it and retries once; a write
never trusts the cache (its fence check asks PostgreSQL).

While the LISTEN connection is down, notifications are lost, so the cache is not trusted: each
lookup asks PostgreSQL, and only if PostgreSQL cannot answer does it fall back to the last route
it knew (a read of a local repository goes on while PostgreSQL is away).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gitstore.errors import ControlPlaneUnavailable

if TYPE_CHECKING:
    from gitstore.cluster.control import ControlPlane, Route

__all__ = ["RouteCache"]

_MISSING = object()


class RouteCache:
    def __init__(self, plane: ControlPlane) -> None:
        self._plane = plane
        self._routes: dict[str, Route | None] = {}
        self._last_known: dict[str, Route | None] = {}
        self._guard = threading.Lock()
        self._generation = 0  # bumped by each invalidation, so a read racing one is not cached
        self.trusted = False  # set while LISTEN is connected (cluster.node)

    def route(self, repo: str) -> Route | None:
        """Where `repo` lives (None: no such repository in the cluster). Raises
        ControlPlaneUnavailable only if PostgreSQL cannot answer and the route was never known."""
        if self.trusted:
            cached = self._routes.get(repo, _MISSING)
            if cached is not _MISSING:
                return cached  # type: ignore[return-value]
        try:
            return self.refresh(repo)
        except ControlPlaneUnavailable:
            known = self._last_known.get(repo, _MISSING)
            if known is _MISSING:
                raise
            return known  # type: ignore[return-value]

    def cached(self, repo: str) -> tuple[bool, Route | None]:
        """(True, the route) if the cache answers without PostgreSQL, else (False, None): what an
        event loop may ask without blocking on a query (api.forwarding on every request)."""
        if not self.trusted:
            return False, None
        cached = self._routes.get(repo, _MISSING)
        return (False, None) if cached is _MISSING else (True, cached)  # type: ignore[return-value]

    def refresh(self, repo: str) -> Route | None:
        """Ask PostgreSQL again (a stale route cost a 421), and cache the answer."""
        generation = self._generation
        found = self._plane.route(repo)
        with self._guard:
            self._last_known[repo] = found
            if self.trusted and generation == self._generation:
                self._routes[repo] = found
        return found

    def remember(self, routes: Iterable[Route]) -> None:
        """Keep `routes` as the last known (read in bulk: at start, on LISTEN's reconnection), for
        while PostgreSQL cannot answer; not as cached answers, which only a lookup makes."""
        with self._guard:
            for route in routes:
                self._last_known[route.repo] = route

    def invalidate(self, repo: str) -> None:
        """Forget `repo`'s route ("*": every route). NOTIFY handlers call it."""
        with self._guard:
            self._generation += 1
            if repo == "*":
                self._routes.clear()
            else:
                self._routes.pop(repo, None)

    def set_trusted(self, trusted: bool) -> None:
        """LISTEN (re)connected: start caching afresh; lost: stop trusting the cache."""
        with self._guard:
            self._generation += 1
            self._routes.clear()
            self.trusted = trusted

"""Cluster mode in the service (issue 23): `install(app, settings)` is the one call api.main makes.

Without GITSTORE_CLUSTER_DSN it sets `app.state.cluster = None` and nothing else (no psycopg
import). With it, building the app connects to the control plane (a DSN that cannot be reached
stops the start, naming host:port), credentials move to PostgreSQL, and the lifespan gains the
node: once the store is open, join, adopt, guard, heartbeat, listen (a name held by another
live process stops the start); at shutdown, after the store's own last work, leave.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.schemas import ClusterRepoList, ClusterRepoOut, RepoOut
from api.settings import Settings
from gitstore import ContentRepository
from gitstore.access.api import Principal
from gitstore.errors import GitstoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitstore.cluster.api import ClusterNode

log = logging.getLogger("gitstore.cluster")

__all__ = ["cluster_of", "install", "list_repositories"]


def install(app: FastAPI, settings: Settings) -> None:
    app.state.cluster = None
    if not settings.cluster_dsn:
        return
    from gitstore.cluster.api import ClusterCredentials, ClusterNode, ControlPlane
    from gitstore.storage.api import use_fsync_method

    if not os.environ.get("GITSTORE_FSYNC"):
        # Replicas take the owner's journal records (ADR 0016): a node journals unless told not to.
        use_fsync_method("journal")
    try:
        plane = ControlPlane(settings.cluster_dsn)
        node = ClusterNode(plane, settings.node_name, settings.node_url)
    except GitstoreError as exc:
        log.error("node %s does not start: %s", settings.node_name, exc.detail)
        raise
    credentials = ClusterCredentials(plane)
    node.on_credentials_changed(credentials.changed)
    app.state.credentials = credentials
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = False
        try:
            async with inner(app):
                try:
                    await run_in_threadpool(node.start, app.state.store)
                except GitstoreError as exc:
                    log.error("node %s does not start: %s", node.name, exc.detail)
                    raise
                started = True
                app.state.cluster = node
                yield
        finally:
            # After the store's last work (the fold at shutdown writes, and is fenced).
            if started:
                await run_in_threadpool(node.stop)
            plane.close()

    app.router.lifespan_context = lifespan


def cluster_of(request: Request) -> ClusterNode | None:
    """The running node; None when embedded."""
    return request.app.state.cluster  # type: ignore[no-any-return]


def list_repositories(
    node: ClusterNode,
    principal: Principal,
    visible: Callable[[Principal, list[str]], list[str]],
    local: Callable[[ContentRepository], RepoOut],
) -> ClusterRepoList:
    """Every repository of the cluster the caller may see, with its owner; the heads of those
    this node owns (the others' are their owner's to answer)."""
    routes = {route.repo: route for route in node.plane.routes()}
    items = []
    for name in visible(principal, sorted(routes)):
        route = routes[name]
        out = RepoOut(name=name, description=route.description, main=None, draft=None)
        if route.owner == node.name:
            try:
                out = local(node.store.repository(name))
            except GitstoreError:
                log.warning("repository %s lives on this node (%s) but cannot be read", name, node.name)
        items.append(
            ClusterRepoOut(**out.model_dump(), owner=route.owner, owner_alive=route.owner_alive, state=route.state)
        )
    return ClusterRepoList(items=items)

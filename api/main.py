"""The FastAPI application: `create_app(settings)` builds one, and uvicorn calls it as a factory
(`uvicorn --factory api.main:create_app`, as `gitstore serve` does), once in each worker.

Nothing builds an app at import: importing this module reads no settings and installs nothing,
so a test or an embedding builds exactly the app it configures."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from api import cluster, docs, forwarding, git_http, live_reads, metrics, oauth, openapi, problems, readers, ui
from api.background import fold_all, keep_folding, keep_house
from api.logs import install_scrubbing, log_requests_where_answered
from api.methods import Methods
from api.mirroring import sync_public_copies_after_publishes
from api.negotiation import acceptable
from api.ratelimit import RateLimiter
from api.relaying import relay_service
from api.routers import (
    admin,
    bundles,
    containers,
    entities,
    erasures,
    events,
    history,
    links,
    publishing,
    repos,
    webhooks,
)
from api.routers import cluster as cluster_admin
from api.routers import replicas as cluster_replicas
from api.settings import Settings
from gitstore import Store
from gitstore.access.api import Credentials
from gitstore.samples import load_samples
from gitstore.storage.api import LockBudget

log = logging.getLogger("gitstore.api")

#: uvicorn's arguments that name the app: it calls the factory itself, once in each worker.
UVICORN_APP = ("--factory", "api.main:create_app")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service's app; without `settings`, those of the environment (GITSTORE_*)."""
    settings = settings or Settings.from_env()

    install_scrubbing()
    log_requests_where_answered()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = await run_in_threadpool(_open_store, settings)
        if app.state.credentials.is_open:
            log.warning(
                "NO CREDENTIALS CONFIGURED (%s): every loopback caller acts as %s with every scope, "
                "and every other caller is refused. Create a token with `gitstore token create`.",
                settings.credentials_path,
                settings.author_email,
            )
        tasks = []
        if settings.housekeeping_seconds > 0:
            tasks.append(asyncio.create_task(keep_house(app.state.store, settings.housekeeping_seconds)))
        if settings.fold_seconds > 0:
            tasks.append(asyncio.create_task(keep_folding(app.state.store, settings.fold_seconds)))
        if settings.relay:  # events out to RabbitMQ and webhooks, on a thread of its own (ADR 0012)
            app.state.relay = relay_service(app.state.store, settings)
            app.state.relay.start()
        yield
        if app.state.relay is not None:
            await run_in_threadpool(app.state.relay.stop)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await fold_all(app.state.store)  # a clean stop leaves `draft` showing every change

    app = FastAPI(
        title="gitstore",
        version="0.1.0",
        summary="Drafts, publishing, history and content trees, kept in plain git.",
        lifespan=lifespan,
        docs_url=None,  # api.docs serves them, with their assets
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
        responses=openapi.PROBLEM_RESPONSES,
        dependencies=[Depends(acceptable)],
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    app.state.settings = settings
    app.state.credentials = Credentials(settings.credentials_path)
    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    app.state.relay = None
    cluster.install(app, settings)  # cluster mode (GITSTORE_CLUSTER_DSN); nothing when embedded
    cluster_admin.install(app)  # /admin/cluster: moves and drains (after cluster: its node runs them)
    cluster_replicas.install(app)  # /internal/cluster/replicas: rounds shipped, joins sealed
    problems.install(app)
    readers.install(app)
    app.add_middleware(Methods)
    metrics.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Last-Event-ID"],
            expose_headers=["ETag", "Location", "Retry-After"],
            max_age=600,
        )
    forwarding.install(app)  # outermost: a repository another node owns is answered there
    app.include_router(oauth.router)
    app.include_router(admin.router)
    app.include_router(repos.router)
    app.include_router(entities.router)
    app.include_router(publishing.router)
    app.include_router(history.router)
    app.include_router(containers.router)
    app.include_router(links.router)
    app.include_router(events.router)
    app.include_router(erasures.router)
    app.include_router(webhooks.router)
    app.include_router(bundles.router)
    app.include_router(git_http.router)
    ui.install(app)
    if settings.docs:
        docs.install(app)
    live_reads.install(app)  # the live view of an entity, ahead of the router (after every route)

    # Not a threadpool route: it must answer while every thread is busy.
    @app.get("/health", tags=["service"], summary="Liveness: answers without touching git")
    async def health() -> dict[str, object]:
        # A sink that is down is news, not ill health: the server serves and catches it up later.
        sinks = app.state.relay.sinks() if app.state.relay is not None else {}
        return {"status": "ok", "sinks": sinks} if sinks else {"status": "ok"}

    return app


def _open_store(settings: Settings) -> Store:
    """Open the data directory, load the samples into an empty one, and repair what a crash
    may have left half done. Workers start together, so this runs under a file lock."""
    store = Store(settings.data_dir, lock_budget=LockBudget(settings.lock_wait, settings.lock_waiters))
    sync_public_copies_after_publishes(store)
    fd = os.open(store.data_dir / ".gitstore-startup.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if settings.load_samples and store.is_empty() and settings.samples_dir.is_dir():
            loaded = load_samples(store, settings.samples_dir)
            log.info("loaded sample repositories: %s", ", ".join(loaded))
        for name, report in store.repair_all().items():
            if report.removed_locks or report.rolled_forward_publish or report.reindexed_drafts:
                log.warning("repaired %s: %s", name, report)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return store

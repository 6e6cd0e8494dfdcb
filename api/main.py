"""The FastAPI application: `create_app(settings)` builds one; `app` is the one uvicorn serves."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import git_http, problems
from api.routers import containers, entities, events, history, links, publishing, repos
from api.settings import Settings
from gitstore import Store
from gitstore.samples import load_samples

log = logging.getLogger("gitstore.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = await run_in_threadpool(_open_store, settings)
        yield

    app = FastAPI(
        title="gitstore",
        version="0.1.0",
        summary="Drafts, publishing, history and content trees, kept in plain git.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    app.include_router(repos.router)
    app.include_router(entities.router)
    app.include_router(publishing.router)
    app.include_router(history.router)
    app.include_router(containers.router)
    app.include_router(links.router)
    app.include_router(events.router)
    app.include_router(git_http.router)

    @app.get("/health", tags=["service"], summary="Liveness: answers without touching git")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _open_store(settings: Settings) -> Store:
    """Open the data directory, load the samples into an empty one, and repair what a crash
    may have left half done. Workers start together, so this runs under a file lock."""
    store = Store(settings.data_dir)
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


app = create_app()

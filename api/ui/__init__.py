"""The editors' and auditors' web app, served under /ui: server-rendered pages over the same
library calls, scope checks and reader rules as the REST API (ADR 0010)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.ui import actions, audit, pages, structure

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for module in (actions, pages, audit, structure):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=307)

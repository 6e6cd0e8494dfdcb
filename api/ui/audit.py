"""Audit pages: compare two versions, blame, the publish log and the activity log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.auth import needs_preview
from api.deps import PrincipalDep, RepoDep
from api.readers import AudienceDep
from api.ui.diffs import field_diffs
from api.ui.render import render
from api.ui.route import UIRoute
from gitstore.entities import api as entities
from gitstore.entities.api import Author
from gitstore.history import api as history

router = APIRouter(prefix="/ui/repos/{repo}", route_class=UIRoute, include_in_schema=False)

Selector = Annotated[str, Query(max_length=64, description="version, commit, 'published' or 'draft'")]
Cursor = Annotated[int | None, Query(ge=1)]
Who = Annotated[str | None, Query(max_length=320)]
KeyFilter = Annotated[str | None, Query(max_length=64)]
PAGE = 50
# A publish of every draft moves thousands of entities: the log names the first few of each;
# the key filter finds any one of them.
ITEMS_SHOWN = 20


@router.get("/entities/{key}/compare")
@needs_preview()
def compare(
    request: Request,
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    from_: Annotated[str, Query(alias="from", max_length=64)] = "published",
    to: Selector = "draft",
    layout: Literal["split", "unified"] = "split",
) -> HTMLResponse:
    result = history.diff(repo, key, from_=from_, to=to)
    return render(
        request,
        "compare.html",
        repo=repo,
        key=key,
        diff=result,
        fields=field_diffs(result.changes),
        from_=from_,
        to=to,
        layout=layout,
    )


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive lines last changed by the same version."""

    commit: str
    version: int
    author: Author
    at: datetime
    lines: list[history.BlameLine]


@router.get("/entities/{key}/blame")
@needs_preview()
def blame(
    request: Request,
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    field: Annotated[str | None, Query(max_length=200)] = None,
    path: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    result = history.blame(repo, key, path=path or None, field=field or None)
    runs: list[_Run] = []
    for line in result.lines:
        if runs and runs[-1].commit == line.commit and runs[-1].lines[-1].line == line.line - 1:
            runs[-1].lines.append(line)
        else:
            runs.append(_Run(line.commit, line.version, line.author, line.committed_at, [line]))
    draft = entities.get_entity(repo, key, state="draft")
    return render(
        request,
        "blame.html",
        repo=repo,
        key=key,
        result=result,
        runs=runs,
        field=field,
        fields=sorted(draft.fields),
    )


@router.get("/publish-log")
def publish_log(
    request: Request,
    repo: RepoDep,
    audience: AudienceDep,
    key: KeyFilter = None,
    author: Who = None,
    cursor: Cursor = None,
) -> HTMLResponse:
    page = history.list_publishes(repo, cursor=cursor, limit=PAGE, key=key or None, author=author or None)
    entries = []
    for entry in page.items:
        items = []
        for item in entry.items[:ITEMS_SHOWN]:
            # What this publish changed for the key: from what was live before it.
            before = repo.index.published_as_of(item.key, entry.id - 1) if audience.preview else None
            items.append({"item": item, "before": before[0] if before else None})
        more = len(entry.items) - len(items)
        entries.append({"entry": entry, "author": audience.author(entry.author), "items": items, "more": more})
    return render(
        request,
        "publish_log.html",
        repo=repo,
        entries=entries,
        preview=audience.preview,
        next_cursor=page.next_cursor,
        filters={"key": key, "author": author},
    )


@router.get("/activity")
@needs_preview()
def activity(
    request: Request,
    repo: RepoDep,
    principal: PrincipalDep,
    key: KeyFilter = None,
    author: Who = None,
    cursor: Cursor = None,
) -> HTMLResponse:
    page = history.list_activity(repo, key=key or None, author=author or None, cursor=cursor, limit=PAGE)
    return render(
        request,
        "activity.html",
        repo=repo,
        changes=page.items,
        next_cursor=page.next_cursor,
        filters={"key": key, "author": author},
    )

"""/repos/{repo}/publish-log and /repos/{repo}/activity: what happened, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.auth import needs_preview
from api.caching import list_etag
from api.deps import PrincipalDep, RepoDep
from api.readers import AudienceDep
from api.schemas import ActivityPage, ChangeOut, PublishLogEntryOut, PublishLogPage
from gitstore.history import api as history

router = APIRouter(prefix="/repos/{repo}", tags=["history"])

Cursor = Annotated[int | None, Query(ge=1, description="from a previous page's next_cursor")]
Limit = Annotated[int, Query(ge=1, le=500)]


def _link_next(request: Request, response: Response, cursor: str | None) -> None:
    if cursor is not None:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'


@router.get("/publish-log", response_model=PublishLogPage, summary="Each publish operation, newest first")
def publish_log(
    repo: RepoDep, audience: AudienceDep, request: Request, response: Response, cursor: Cursor = None, limit: Limit = 50
) -> PublishLogPage:
    response.headers["ETag"] = list_etag(repo, audience)
    page = history.list_publishes(repo, cursor=cursor, limit=limit)
    _link_next(request, response, page.next_cursor)
    items = [PublishLogEntryOut.model_validate(p) for p in page.items]
    shown = [p.model_copy(update={"author": audience.author(p.author)}) for p in items]
    return PublishLogPage(items=shown, next_cursor=page.next_cursor)


@router.get("/activity", response_model=ActivityPage, summary="Every change to every entity, newest first")
@needs_preview()
def activity(
    repo: RepoDep,
    principal: PrincipalDep,
    audience: AudienceDep,
    request: Request,
    response: Response,
    key: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=320, description="an author's email or name")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ActivityPage:
    response.headers["ETag"] = list_etag(repo, audience)
    page = history.list_activity(repo, key=key, author=author, cursor=cursor, limit=limit)
    _link_next(request, response, page.next_cursor)
    return ActivityPage(items=[ChangeOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor)

"""/repos/{repo}/entities: read any view of an entity and change its draft."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api import caching, readers
from api.answers import JSONAnswer, VersionPages, encode, entity_document, version_documents
from api.auth import Principal, a_draft_view_or_a_version, a_draft_view_or_whether_drafts_differ, needs_preview
from api.body import JsonBody, MergePatchBody, OptionalJsonBody, json_body, validate_body
from api.caching import list_etag
from api.deps import PreconditionDep, PrincipalDep, RepoDep, Writer, set_etag
from api.problems import HTTPProblem
from api.readers import AudienceDep
from api.schemas import (
    BlameOut,
    DiffOut,
    DiscardRequest,
    EntityOut,
    EntityPage,
    EntityPut,
    EntityWritten,
    RestoreRequest,
    VersionPage,
)
from gitstore import ContentRepository, Entity, content
from gitstore.entities import api as entities
from gitstore.entities.api import Precondition, WriteResult, draft_tip, published_commit
from gitstore.errors import InvalidInput
from gitstore.history import api as history
from gitstore.index.api import ListFilter
from gitstore.names import KEY_PATTERN, validate_key
from gitstore.publishing.api import serve

router = APIRouter(prefix="/repos/{repo}/entities", tags=["entities"])

Key = Annotated[str, "entity key"]
#: A versions page's length when the query does not say, and at most.
VERSIONS_LIMIT, VERSIONS_MAX_LIMIT = 50, 500
_document_body = json_body(EntityPut)
_merge_patch_body = {
    "requestBody": {
        "required": True,
        "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
    }
}


BaseQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9a-f]{40}$",
        description="the commit this change was made on: merge it onto the current draft (instead of If-Match)",
    ),
]


def _base_replaces_if_match(expected: Precondition) -> None:
    if expected is not None:
        raise HTTPProblem(
            400, "malformed-precondition", "Malformed precondition", "send ?base= or a precondition header, not both"
        )


def _as_of_is_alone(state: str, *others: object) -> None:
    if state != "published" or any(o is not None for o in others):
        raise InvalidInput(
            "as_of reads what was live: it takes no state, version, commit or filters",
            errors=[{"loc": ["as_of"], "msg": "combined with other selectors"}],
        )


def _written(result: WriteResult, response: Response) -> EntityWritten:
    set_etag(response, result.entity.commit)
    if result.created:
        response.status_code = 201
    return EntityWritten.model_validate(result.entity).model_copy(update={"warnings": list(result.warnings)})


@router.get("", response_model=EntityPage, summary="List entities")
@needs_preview(when=a_draft_view_or_whether_drafts_differ)
def list_entities(
    repo: RepoDep,
    principal: PrincipalDep,
    audience: AudienceDep,
    request: Request,
    response: Response,
    state: Literal["draft", "published"] = "published",
    type: Annotated[str | None, Query(max_length=64)] = None,
    locale: Annotated[str | None, Query(max_length=32)] = None,
    has_unpublished_changes: bool | None = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=64, description="next_cursor of the previous page", json_schema_extra={"pattern": KEY_PATTERN}
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    as_of: Annotated[datetime | None, Query(description="RFC 3339 time: what was live then")] = None,
) -> EntityPage:
    response.headers["ETag"] = list_etag(repo, audience)
    if state == "published":
        caching.live(response, None)
    if as_of is not None:
        _as_of_is_alone(state, type, locale, has_unpublished_changes)
        page = history.list_entities_as_of(repo, as_of, cursor=cursor, limit=limit)
    else:
        where = ListFilter(state=state, type=type, locale=locale, has_unpublished_changes=has_unpublished_changes)
        page = entities.list_entities(repo, where, cursor=cursor, limit=limit)
    if page.next_cursor is not None:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    items = audience.entities(repo, [EntityOut.model_validate(e) for e in page.items])
    return EntityPage(items=items, next_cursor=page.next_cursor, damaged=page.damaged)


@router.get(
    "/{key}",
    response_model=None,
    responses={200: {"model": EntityOut}},
    summary="Read an entity: live, draft or a past version",
)
@needs_preview(when=a_draft_view_or_a_version)
async def get_entity(
    repo: RepoDep,
    key: Key,
    principal: PrincipalDep,
    request: Request,
    state: Literal["draft", "published"] = "published",
    version: Annotated[int | None, Query(ge=1)] = None,
    commit: Annotated[str | None, Query(max_length=64)] = None,
    as_of: Annotated[datetime | None, Query(description="RFC 3339 time: what was live then")] = None,
) -> Response:
    # A view of the current heads is a few ref reads and a cached snapshot: served here, on the
    # event loop (a threadpool hop costs more than the read); a past version or a past moment
    # walks history, off the loop.
    if as_of is not None:
        _as_of_is_alone(state, version, commit)
        entity = serve(await run_in_threadpool(history.get_entity_as_of, repo, key, as_of))
    elif version is not None or commit is not None:
        entity = await run_in_threadpool(entities.get_entity, repo, key, state=state, version=version, commit=commit)
    elif state == "published":
        return live_entity(request, principal, repo, key)
    else:
        entity = entities.get_entity(repo, key, state=state)
    return _answer(request, principal, repo, entity)


def live_entity(request: Request, principal: Principal, repo: ContentRepository, key: str) -> Response:
    """The live view of `key`: what `GET /repos/{repo}/entities/{key}` answers, by this route
    or by api.live_reads, which answers it without FastAPI's router and dependencies."""
    entity = serve(entities.get_entity(repo, key, state="published"))  # gone answers 410, a redirect 301
    answer = _answer(request, principal, repo, entity)
    caching.live(answer, entity.updated_at)
    return answer


def _answer(request: Request, principal: Principal, repo: ContentRepository, entity: Entity) -> Response:
    # Who sees what, asked here rather than as a dependency: FastAPI solves every dependency
    # anew on each request, and this one again solves the repository's and the caller's.
    shown = readers.audience(request, principal, repo).documents(repo, [entity_document(entity)])[0]
    answer = JSONAnswer(encode(shown))
    set_etag(answer, entity.commit)
    return answer


@router.put(
    "/{key}",
    response_model=EntityWritten,
    summary="Create the entity or replace its draft",
    openapi_extra=_document_body,
    responses={201: {"model": EntityWritten, "description": "Created: the entity did not exist (or was deleted)"}},
)
def put_entity(
    repo: RepoDep,
    key: Key,
    principal: Writer,
    expected: PreconditionDep,
    response: Response,
    body: JsonBody,
    base: BaseQuery = None,
) -> EntityWritten:
    if base is not None:
        _base_replaces_if_match(expected)
        return _written(content.write_from_base(repo, key, base, document=body, author=principal.author), response)
    return _written(content.put_draft(repo, key, body, author=principal.author, expected=expected), response)


@router.patch(
    "/{key}",
    response_model=EntityWritten,
    summary="Change the draft with a JSON Merge Patch",
    openapi_extra=_merge_patch_body,
)
def patch_entity(
    repo: RepoDep,
    key: Key,
    principal: Writer,
    expected: PreconditionDep,
    response: Response,
    body: MergePatchBody,
    base: BaseQuery = None,
) -> EntityWritten:
    if base is not None:
        _base_replaces_if_match(expected)
        if not isinstance(body, dict):
            raise InvalidInput(
                "a merge patch must be a JSON object", errors=[{"loc": ["body"], "msg": "not an object"}]
            )
        return _written(content.write_from_base(repo, key, base, patch=body, author=principal.author), response)
    return _written(content.patch_draft(repo, key, body, author=principal.author, expected=expected), response)


@router.delete("/{key}", response_model=EntityWritten, summary="Soft delete: live until the delete is published")
def delete_entity(
    repo: RepoDep, key: Key, principal: Writer, expected: PreconditionDep, response: Response
) -> EntityWritten:
    return _written(content.delete_entity(repo, key, author=principal.author, expected=expected), response)


@router.post(
    "/{key}/discard",
    response_model=EntityWritten,
    summary="Put the published content back on the draft",
    openapi_extra=json_body(DiscardRequest, required=False),
)
def discard_draft(
    repo: RepoDep,
    key: Key,
    principal: Writer,
    expected: PreconditionDep,
    response: Response,
    body: OptionalJsonBody,
) -> EntityWritten:
    validate_body(DiscardRequest, body)
    return _written(content.discard_draft(repo, key, author=principal.author, expected=expected), response)


@router.post(
    "/{key}/restore",
    response_model=EntityWritten,
    summary="A new draft with an old version's content",
    openapi_extra=json_body(RestoreRequest),
)
def restore_version(
    repo: RepoDep,
    key: Key,
    principal: Writer,
    expected: PreconditionDep,
    response: Response,
    body: JsonBody,
) -> EntityWritten:
    request = validate_body(RestoreRequest, body)
    return _written(
        content.restore_version(
            repo, key, request.version, commit=request.commit, author=principal.author, expected=expected
        ),
        response,
    )


@router.get(
    "/{key}/versions",
    response_model=None,
    responses={200: {"model": VersionPage}},
    summary="The draft branch's history, newest first",
)
@needs_preview()
async def list_versions(
    repo: RepoDep,
    key: Key,
    principal: PrincipalDep,
    request: Request,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=VERSIONS_MAX_LIMIT)] = VERSIONS_LIMIT,
) -> Response:
    return await versions_page(request, repo, key, cursor, limit)


async def versions_page(
    request: Request, repo: ContentRepository, key: str, cursor: int | None, limit: int
) -> Response:
    """A page of `key`'s versions: what `GET .../{key}/versions` answers, by this route or by
    api.live_reads (the caller may preview `repo`, and the query is valid)."""
    page_key = _version_page_key(repo, key, cursor, limit)
    found = _version_pages.get(page_key)
    if found is None:
        page = await run_in_threadpool(entities.list_versions, repo, key, cursor=cursor, limit=limit)
        found = encode({"items": version_documents(page.items), "next_cursor": page.next_cursor}), page.next_cursor
        if _version_page_key(repo, key, cursor, limit) == page_key:  # nothing moved while it was read
            _version_pages.put(page_key, *found)
    body, next_cursor = found
    answer = JSONAnswer(body)
    if next_cursor is not None:
        answer.headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return answer


_version_pages = VersionPages()


def _version_page_key(repo: ContentRepository, key: str, cursor: int | None, limit: int) -> Hashable:
    """What a versions page is made of (api.answers.VersionPages), read as list_versions reads
    it, so a key it refuses is refused here with the same error."""
    validate_key(key)
    tip = draft_tip(repo, key)
    went_live = tuple(sorted(repo.index.publish_times(key).items()))
    return key, tip, cursor, limit, published_commit(repo, key), went_live


@router.get(
    "/{key}/diff",
    response_model=DiffOut,
    summary="What changed between two versions (default: what publishing would change)",
    responses={200: {"content": {"text/x-diff": {}}}},
)
@needs_preview()
def diff_entity(
    repo: RepoDep,
    key: Key,
    principal: PrincipalDep,
    request: Request,
    from_: Annotated[
        str, Query(alias="from", max_length=64, description="version, commit, 'published' or 'draft'")
    ] = "published",
    to: Annotated[str, Query(max_length=64, description="version, commit, 'published' or 'draft'")] = "draft",
) -> Any:
    result = history.diff(repo, key, from_=from_, to=to)
    if "text/x-diff" in request.headers.get("accept", ""):
        return PlainTextResponse(result.patch, media_type="text/x-diff")
    return DiffOut.model_validate(result)


@router.get("/{key}/blame", response_model=BlameOut, summary="Who last changed each line of one of the entity's files")
@needs_preview()
def blame_entity(
    repo: RepoDep,
    key: Key,
    principal: PrincipalDep,
    path: Annotated[str | None, Query(max_length=200, description="a file of the entity (default entity.json)")] = None,
    field: Annotated[
        str | None, Query(max_length=200, description="a field: its own file, or its lines of entity.json")
    ] = None,
) -> BlameOut:
    if path is not None and field is not None:
        raise InvalidInput("name a path or a field, not both", errors=[{"loc": ["field"], "msg": "with path"}])
    return BlameOut.model_validate(history.blame(repo, key, path=path, field=field))

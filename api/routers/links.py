"""Links (GOV.UK's model): expanded links, dependents, link types, documents and their
translations, and what the live site serves at a base_path."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from api import caching
from api.auth import a_draft_view, needs_preview
from api.body import JsonBody, json_body, validate_body
from api.deps import Admin, PrincipalDep, RepoDep, set_etag
from api.readers import AudienceDep
from api.schemas import (
    DocumentOut,
    EntityOut,
    ExpandedLinksOut,
    KeyList,
    LinkTypeList,
    LinkTypeOut,
    LinkTypePut,
    TranslationOut,
)
from gitstore import content
from gitstore.entities import api as entities
from gitstore.entities.api import base_path_problem, canonical_base_path
from gitstore.errors import EntityNotFound, InvalidInput
from gitstore.links import api as links
from gitstore.publishing.api import serve_at_path

router = APIRouter(prefix="/repos/{repo}", tags=["links"])

State = Literal["draft", "published"]
LocaleQuery = Annotated[str | None, Query(max_length=32, description="the reader's locale (default: the entity's)")]


@router.get(
    "/entities/{key}/expanded-links",
    response_model=ExpandedLinksOut,
    summary="Each link as a summary of its target in the same view, plus reverse links and breadcrumbs",
)
@needs_preview(when=a_draft_view)
def expanded_links(
    repo: RepoDep, key: str, principal: PrincipalDep, state: State = "published", locale: LocaleQuery = None
) -> ExpandedLinksOut:
    return ExpandedLinksOut.model_validate(links.expanded_links(repo, key, state=state, locale=locale))


@router.get(
    "/entities/{key}/dependents",
    response_model=KeyList,
    summary="Every entity whose expanded representation includes this one: what to re-present after it changes",
)
@needs_preview(when=a_draft_view)
def dependents(
    repo: RepoDep, key: str, principal: PrincipalDep, audience: AudienceDep, state: State = "published"
) -> KeyList:
    if not audience.knows(repo, key):
        # What links to a page that never was live is known, but telling it would tell of the page.
        return KeyList(items=[])
    return KeyList(items=links.dependents(repo, [key], state=state))


@router.get("/documents/{content_id}", response_model=DocumentOut, summary="A document's translations, by locale")
def document(repo: RepoDep, content_id: str, audience: AudienceDep) -> DocumentOut:
    preview = audience.preview
    found = links.translations(repo, content_id, include_drafts=preview)
    items = [TranslationOut.model_validate(t).model_copy(update={"draft": t.draft if preview else None}) for t in found]
    return DocumentOut(content_id=content_id, translations=items)


@router.get(
    "/paths/{base_path:path}",
    response_model=EntityOut,
    summary="What the live site serves at a base_path: the entity, 410 if gone, 301 if redirected",
)
def live_at_path(
    repo: RepoDep, base_path: str, audience: AudienceDep, request: Request, response: Response
) -> EntityOut:
    # The path as sent, escapes and all (the router has decoded them, and `%2F` is not a `/`),
    # in the form base_paths are stored in.
    raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    path = "/" + raw[raw.find("/repos/") :].split("/", 4)[4]
    problem = base_path_problem(path)
    if problem:
        raise InvalidInput(f"{path!r} {problem}", errors=[{"loc": ["base_path"], "msg": problem}])
    path = canonical_base_path(path)
    holder = repo.index.live_holders([path]).get(path)
    if holder is None:
        raise EntityNotFound(f"nothing is live at {path}")
    entity = serve_at_path(entities.get_entity(repo, holder, state="published"))
    set_etag(response, entity.commit)
    caching.live(response, entity.updated_at)
    return audience.entity(repo, EntityOut.model_validate(entity))


@router.get("/link-types", response_model=LinkTypeList, summary="Link types with a reverse or breadcrumbs")
def list_link_types(repo: RepoDep) -> LinkTypeList:
    return LinkTypeList(items=[LinkTypeOut.model_validate(t) for t in links.link_types(repo)])


@router.get("/link-types/{name}", response_model=LinkTypeOut, summary="How one link type expands")
def get_link_type(repo: RepoDep, name: str) -> LinkTypeOut:
    return LinkTypeOut.model_validate(links.link_type(repo, name))


@router.put(
    "/link-types/{name}",
    response_model=LinkTypeOut,
    summary="Give a link type a reverse name or breadcrumbs",
    openapi_extra=json_body(LinkTypePut),
)
def put_link_type(repo: RepoDep, name: str, principal: Admin, body: JsonBody) -> LinkTypeOut:
    request = validate_body(LinkTypePut, body)
    kind = content.set_link_type(
        repo, name, reverse=request.reverse, breadcrumbs=request.breadcrumbs, author=principal.author
    )
    return LinkTypeOut.model_validate(kind)

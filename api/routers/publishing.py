"""Publishing: one entity, or many at once atomically (a container publishes with what it
holds), and taking live content down again. Every answer lists the dependents to re-present."""

from __future__ import annotations

from fastapi import APIRouter

from api.body import OptionalJsonBody, json_body, validate_body
from api.deps import IfMatchDep, Publisher, RepoDep
from api.schemas import PublishEntityRequest, PublishOut, PublishRequest, UnpublishRequest
from gitstore import ContentRepository, content
from gitstore.entities import api as entities
from gitstore.entities.api import IfExists, IfMatch
from gitstore.errors import InvalidInput
from gitstore.links import api as links
from gitstore.publishing import api as publishing

router = APIRouter(prefix="/repos/{repo}", tags=["publishing"])


@router.post(
    "/entities/{key}/publish",
    response_model=PublishOut,
    summary="Publish one entity's draft (or a version of it); a container brings its members' drafts",
    openapi_extra=json_body(PublishEntityRequest, required=False),
)
def publish_entity(
    repo: RepoDep,
    key: str,
    principal: Publisher,
    expected: IfMatchDep,
    body: OptionalJsonBody,
) -> PublishOut:
    request = validate_body(PublishEntityRequest, body)
    target = publishing.PublishTarget(key, version=request.version, expected=_if_match_only(repo, key, expected))
    record = content.publish(repo, [target], author=principal.author, note=_note(request))
    return PublishOut.model_validate(record)


@router.post(
    "/publish",
    response_model=PublishOut,
    summary="Publish many entities in one atomic operation",
    openapi_extra=json_body(PublishRequest),
)
def publish_many(repo: RepoDep, principal: Publisher, body: OptionalJsonBody) -> PublishOut:
    request = validate_body(PublishRequest, body)
    if request.all_drafts == (request.keys is not None):
        raise InvalidInput(
            'send either {"keys": [...]} or {"all_drafts": true}',
            errors=[{"loc": ["body"], "msg": "exactly one of keys, all_drafts"}],
        )
    if request.all_drafts:
        record = content.publish_all_drafts(repo, author=principal.author, note=_note(request))
    else:
        targets = [publishing.PublishTarget(k) for k in dict.fromkeys(request.keys or [])]
        record = content.publish(repo, targets, author=principal.author, note=_note(request))
    return PublishOut.model_validate(record)


def _note(request: PublishEntityRequest | PublishRequest | UnpublishRequest) -> links.PublishNote:
    return links.PublishNote(request.update_type, request.change_note)


def _if_match_only(repo: ContentRepository, key: str, expected: IfMatch | IfExists | None) -> IfMatch | None:
    """Publishing and unpublishing move live content: only If-Match makes sense for them. With
    `*` any draft tip will do; only an entity that is not there fails it (412, not 404)."""
    if isinstance(expected, IfExists):
        entities.require_exists(repo, key)
        return None
    return expected


@router.post(
    "/entities/{key}/unpublish",
    response_model=PublishOut,
    summary="Take live content down: gone (410), redirect, or withdrawn (still readable, with why)",
    openapi_extra=json_body(UnpublishRequest),
)
def unpublish_entity(
    repo: RepoDep,
    key: str,
    principal: Publisher,
    expected: IfMatchDep,
    body: OptionalJsonBody,
) -> PublishOut:
    request = validate_body(UnpublishRequest, body)
    record = content.unpublish(
        repo,
        key,
        request.type,
        author=principal.author,
        explanation=request.explanation,
        alternative_path=request.alternative_path,
        discard_draft=request.discard_draft,
        expected=_if_match_only(repo, key, expected),
        note=_note(request),
    )
    return PublishOut.model_validate(record)


@router.post(
    "/entities/{key}/republish",
    response_model=PublishOut,
    summary="Reverse an unpublish: the live content, without the notice, live again",
)
def republish_entity(repo: RepoDep, key: str, principal: Publisher, expected: IfMatchDep) -> PublishOut:
    record = content.republish(repo, key, author=principal.author, expected=_if_match_only(repo, key, expected))
    return PublishOut.model_validate(record)

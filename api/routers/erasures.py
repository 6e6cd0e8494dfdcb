"""Erasure (a legal takedown) of an entity's content from every copy, and the record of each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.auth import needs_preview
from api.body import JsonBody, json_body, validate_body
from api.deps import Admin, PrincipalDep, RepoDep
from api.schemas import EraseRequest, ErasureOut
from gitstore.erasure import erase, erasures

router = APIRouter(prefix="/repos/{repo}", tags=["erasure"])

Key = Annotated[str, "entity key"]


@router.post(
    "/entities/{key}/erase",
    response_model=ErasureOut,
    summary="Erase an entity's content, one version or all, from history, the public copy and the index",
    openapi_extra=json_body(EraseRequest),
)
def erase_entity(repo: RepoDep, key: Key, principal: Admin, body: JsonBody) -> ErasureOut:
    request = validate_body(EraseRequest, body)
    done = erase(repo, key, author=principal.author, reason=request.reason, version=request.version)
    return ErasureOut.model_validate(done)


@router.get("/erasures", response_model=list[ErasureOut], summary="Every erasure of the repository, oldest first")
@needs_preview()
def list_erasures(repo: RepoDep, principal: PrincipalDep) -> list[ErasureOut]:
    return [ErasureOut.model_validate(e) for e in erasures(repo)]

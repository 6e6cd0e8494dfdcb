"""Containers: manifests, resolved trees, "where used", and the per-repository type rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.auth import a_draft_view, needs_preview
from api.body import JsonBody, json_body, validate_body
from api.deps import Admin, PrincipalDep, RepoDep
from api.readers import AudienceDep
from api.schemas import (
    ContainerTypeList,
    ContainerTypeOut,
    ContainerTypePut,
    MemberList,
    MemberOut,
    TreeNodeOut,
    UsageList,
    UsageOut,
)
from gitstore import content
from gitstore.containers import api as containers
from gitstore.containers.api import View
from gitstore.errors import InvalidInput

router = APIRouter(prefix="/repos/{repo}", tags=["containers"])


@router.get(
    "/entities/{key}/members",
    response_model=MemberList,
    summary="A container version's member list: as the author wrote it, pinned when made, or frozen",
)
@needs_preview()
def member_list(
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, description="a version number; the draft if absent")] = None,
    list: Literal["author", "initial", "frozen"] = "author",
) -> MemberList:
    members = containers.member_list(repo, key, version=version, kind=list)
    return MemberList(items=[MemberOut.model_validate(m) for m in members])


@router.get("/entities/{key}/tree", response_model=TreeNodeOut, summary="The resolved nested tree of a container")
@needs_preview(when=a_draft_view)
def tree(
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    audience: AudienceDep,
    state: Literal["draft", "published"] = "published",
    as_of: Annotated[datetime | None, Query(description="RFC 3339 time: the live tree then")] = None,
) -> TreeNodeOut:
    if as_of is not None:
        if state != "published":
            raise InvalidInput(
                "as_of reads what was live: it takes no state",
                errors=[{"loc": ["as_of"], "msg": "combined with state=draft"}],
            )
        root = containers.tree_as_of(repo, key, as_of)
    else:
        root = containers.resolve_tree(repo, key, View(state))
    return TreeNodeOut.model_validate(audience.tree(root))


@router.get(
    "/entities/{key}/containers",
    response_model=UsageList,
    summary='"Where used": the containers whose draft or live manifest names this entity',
)
def where_used(repo: RepoDep, key: str, audience: AudienceDep) -> UsageList:
    usages = audience.usages(repo, key, containers.where_used(repo, key))
    return UsageList(items=[UsageOut.model_validate(u) for u in usages])


@router.get("/types", response_model=ContainerTypeList, summary="Container types and what each may hold")
def list_types(repo: RepoDep) -> ContainerTypeList:
    return ContainerTypeList(items=[ContainerTypeOut.model_validate(t) for t in containers.container_types(repo)])


@router.get("/types/{type}", response_model=ContainerTypeOut, summary="What one type may hold")
def get_type(repo: RepoDep, type: str) -> ContainerTypeOut:
    return ContainerTypeOut.model_validate(containers.container_type(repo, type))


@router.put(
    "/types/{type}",
    response_model=ContainerTypeOut,
    summary="Set what a type may hold in this repository (null: anything, []: nothing)",
    openapi_extra=json_body(ContainerTypePut),
)
def put_type(repo: RepoDep, type: str, principal: Admin, body: JsonBody) -> ContainerTypeOut:
    request = validate_body(ContainerTypePut, body)
    kind = content.set_container_type(repo, type, request.allowed_member_types, author=principal.author)
    return ContainerTypeOut.model_validate(kind)

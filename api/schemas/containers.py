"""Containers: members, trees, where an entity is used, container types."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import FromLibrary
from api.schemas.entities import MemberOut, UnpublishingOut


class MemberList(BaseModel):
    """A container version's member list."""

    items: list[MemberOut]


class TreeNodeOut(FromLibrary):
    """A container resolved to a tree: each member at the commit it resolves to, nested."""

    key: str
    type: str
    title: str
    commit: str
    version: int
    pinned: bool
    contains_unpublished_changes: bool | None = Field(
        description="the draft of anything in this subtree differs from what is live (null without preview rights)"
    )
    members: list[TreeNodeOut] | None = Field(description="null for an entity that is not a container")
    unpublishing: UnpublishingOut | None = Field(
        default=None, description="how this version was taken down; live trees leave out all but withdrawn members"
    )


class UsageOut(FromLibrary):
    """A container whose manifest names the entity, and in which view."""

    container: str
    view: Literal["draft", "live"]
    pinned: bool = Field(description="the manifest pins this entity to a commit")


class UsageList(BaseModel):
    """Where an entity is used: the containers naming it."""

    items: list[UsageOut]


class ContainerTypeOut(FromLibrary):
    """A container type and the member types it admits."""

    name: str
    allowed_member_types: list[str] | None = Field(
        description="types a member may have (a dotted subtype matches: component admits component.html); "
        "null for any, [] for a leaf"
    )
    overridden: bool = Field(description="set by this repository rather than a gitstore default")


class ContainerTypeList(BaseModel):
    """Every container type the repository knows."""

    items: list[ContainerTypeOut]


class ContainerTypePut(BaseModel):
    """What a container type may hold in this repository."""

    model_config = ConfigDict(extra="forbid", strict=True)
    allowed_member_types: list[str] | None = Field(max_length=1000)

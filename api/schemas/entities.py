"""Entities and their versions, as the API reads and writes them. The entity document
itself is gitstore's `Document`, so the library and the API validate a body the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import PUBLIC_AUTHORS, FromLibrary, preview_only
from gitstore.entities.api import Document

EntityPut = Document


class AuthorOut(FromLibrary):
    """Who made a change: the git author of its commit."""

    name: str
    email: str | None = preview_only("absent for callers without the preview right")


class MemberOut(FromLibrary):
    """One member of a container's manifest, as stored: its key, and the commit it is pinned to if any."""

    key: str
    pin: str | None = Field(description="a commit of the member's draft branch, or null for the latest")


class UnpublishingOut(FromLibrary):
    """How a version was taken down, and why: the notice readers of it are shown."""

    type: Literal["gone", "redirect", "vanish", "withdrawn"]
    at: datetime = Field(description="when it was unpublished")
    explanation: str | None
    alternative_path: str | None


class EntityOut(FromLibrary):
    """An entity as one view shows it: its document, where it stands (draft, published, superseded) and its validator (commit)."""

    key: str
    type: str
    title: str
    locale: str
    content_id: str = Field(description="the document this entity is a translation of (its own key if none)")
    base_path: str | None
    fields: dict[str, Any]
    links: dict[str, list[str]]
    members: list[MemberOut] | None = Field(description="a container's ordered manifest; null if not a container")
    version: int
    edition: int
    commit: str
    state: Literal["draft", "published", "superseded"]
    published_commit: str | None
    has_unpublished_changes: bool | None = preview_only("the draft differs from this; absent without the preview right")
    deleted: bool
    author: AuthorOut | None = preview_only(PUBLIC_AUTHORS)
    updated_at: datetime
    unpublishing: UnpublishingOut | None = Field(
        default=None, description="how this version was taken down (gone, redirect, withdrawn), if it was"
    )
    withdrawn_at: datetime | None = Field(default=None, description="set while withdrawn")


class EntityWritten(EntityOut):
    """The entity's draft after a write, with anything true but worth knowing about it."""

    warnings: list[str] = Field(
        default_factory=list, description="true but allowed, e.g. the base_path is live on another entity"
    )


class EntityPage(BaseModel):
    """One page of an entity list; pass next_cursor as ?cursor= for the next."""

    items: list[EntityOut]
    next_cursor: str | None
    damaged: list[str] = Field(
        default_factory=list,
        description="keys of this page left out of items because their stored content is damaged: "
        "each one's own URL answers the corrupt-object problem; `gitstore fsck` finds the cause",
    )


class VersionOut(FromLibrary):
    """One version of an entity: a commit on its draft branch, and whether it went live."""

    version: int
    edition: int
    commit: str
    action: str
    message: str
    author: AuthorOut
    committed_at: datetime
    live: bool = Field(description="this version is the one live now")
    published_at: datetime | None = Field(description="when this version first went live, if it ever did")


class VersionPage(BaseModel):
    """One page of an entity's versions, newest first."""

    items: list[VersionOut]
    next_cursor: str | None


class DiscardRequest(BaseModel):
    """Discarding takes no options: an empty object, or no body."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RestoreRequest(BaseModel):
    """Which old version to restore: a version number or a commit, exactly one."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # _one_of, as JSON Schema: the other one absent or null.
        json_schema_extra={
            "oneOf": [
                {"required": ["version"], "properties": {"version": {"type": "integer"}, "commit": {"type": "null"}}},
                {"required": ["commit"], "properties": {"commit": {"type": "string"}, "version": {"type": "null"}}},
            ]
        },
    )
    version: int | None = Field(default=None, ge=1)
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")

    @model_validator(mode="after")
    def _one_of(self) -> RestoreRequest:
        if (self.version is None) == (self.commit is None):
            raise ValueError("name exactly one of version, commit")
        return self

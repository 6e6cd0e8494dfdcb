"""Publishing and unpublishing: what a publish asks for and what it moved."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import FromLibrary
from api.schemas.entities import AuthorOut


class _PublishNote(BaseModel):
    """GOV.UK's why of a publish, recorded in its commit on main, the publish log and the feed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    update_type: Literal["major", "minor", "republish"] | None = Field(
        default=None, description="major: readers are told; minor: a correction; republish: sent again"
    )
    change_note: str | None = Field(default=None, max_length=10_000, description="what changed, in one line")


class PublishEntityRequest(_PublishNote):
    """How to publish one entity: optionally a version, and the note GOV.UK-style publishing records."""

    version: int | None = Field(default=None, ge=1, description="publish this version (a fast-forward only)")


class PublishRequest(_PublishNote):
    """Which entities to publish in one atomic operation: a list of keys, or every draft."""

    keys: list[str] | None = Field(default=None, max_length=10000)
    all_drafts: bool = False


class PublishedItemOut(FromLibrary):
    """One entity a publish put live (or took down, if deleted)."""

    key: str
    commit: str
    version: int
    edition: int
    deleted: bool


class PublishOut(FromLibrary):
    """What a publish or unpublish did: its commit on main, each entity, and what else to re-present."""

    commit: str | None = Field(description="the publish commit on main; null if nothing needed publishing")
    author: AuthorOut
    published_at: datetime | None
    items: list[PublishedItemOut]
    dependents: list[str] = Field(description="other entities whose expanded representation changed: re-present them")


class UnpublishRequest(_PublishNote):
    """How to take live content down, and what readers are told."""

    type: Literal["gone", "redirect", "vanish", "withdrawn"] = Field(
        description="gone: 410 with the explanation; vanish: 410 with none, unlisted; redirect: 301 to "
        "alternative_path; withdrawn: still readable, with the explanation"
    )
    alternative_path: str | None = Field(default=None, max_length=2048, description="where a redirect goes")
    explanation: str | None = Field(default=None, max_length=10_000, description="why; required to withdraw")
    discard_draft: bool = Field(default=False, description="throw away unpublished draft changes (kept in history)")

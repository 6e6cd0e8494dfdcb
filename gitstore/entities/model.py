"""What the entities layer hands back: frozen values, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gitstore.entities.document import Member, Unpublishing


@dataclass(frozen=True, slots=True)
class Author:
    """Who made a change; becomes the git author (and committer) of its commit.

    `at` is when, for a change that happened before it is written: the sample loader replays a
    history whose times are part of it. Otherwise (always, for a request) the commit says now."""

    name: str
    email: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """One view of an entity: its draft, what is live, or a past version.

    `state` is "draft", "published", or "superseded" for a version that is neither.
    `commit` is the lock version (the ETag); `version` counts commits on the draft branch;
    `edition` is the user-facing version (seed 001), unchanged from draft to published.
    """

    key: str
    type: str
    title: str
    locale: str
    content_id: str  # the document this is a translation of (its own key if none)
    base_path: str | None
    fields: dict[str, Any]
    links: dict[str, list[str]]
    members: tuple[Member, ...] | None  # a container's manifest as written; None if not a container
    version: int
    edition: int
    commit: str
    state: str
    published_commit: str | None
    has_unpublished_changes: bool
    deleted: bool
    author: Author
    updated_at: datetime
    unpublishing: Unpublishing | None = None  # how this version was taken down, if it was

    @property
    def withdrawn_at(self) -> datetime | None:
        notice = self.unpublishing
        return datetime.fromisoformat(notice.at) if notice is not None and notice.type == "withdrawn" else None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The draft after a write. `changed` is False when the write was a no-op (no commit)."""

    entity: Entity
    created: bool
    changed: bool
    warnings: tuple[str, ...] = ()  # true but allowed, e.g. the base_path is live on another entity


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One commit of an entity's draft branch."""

    version: int
    edition: int
    commit: str
    action: str
    message: str
    author: Author
    committed_at: datetime
    live: bool  # this version is the one published now
    published_at: datetime | None  # when this version first went live, if it ever did


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; `next_cursor` is None on the last page. `damaged`: keys of this
    page left out of `items` because their stored content cannot be read (CorruptObject)."""

    items: list[Any] = field(default_factory=list)
    next_cursor: str | None = None
    damaged: list[str] = field(default_factory=list)

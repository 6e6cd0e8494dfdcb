"""Request and response shapes, named by role. The entity document itself is gitstore's
`Document`, so the library and the API validate a body the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gitstore import Entity, VersionInfo
from gitstore.entities.document import Document
from gitstore.publishing.api import PublishRecord

EntityPut = Document


class AuthorOut(BaseModel):
    name: str
    email: str


class EntityOut(BaseModel):
    key: str
    type: str
    title: str
    locale: str
    base_path: str | None
    fields: dict[str, Any]
    links: dict[str, list[str]]
    version: int
    edition: int
    commit: str
    state: Literal["draft", "published", "superseded"]
    published_commit: str | None
    has_unpublished_changes: bool
    deleted: bool
    author: AuthorOut
    updated_at: datetime

    @classmethod
    def of(cls, e: Entity) -> EntityOut:
        return cls(
            key=e.key, type=e.type, title=e.title, locale=e.locale, base_path=e.base_path,
            fields=e.fields, links=e.links, version=e.version, edition=e.edition, commit=e.commit,
            state=e.state,  # type: ignore[arg-type]
            published_commit=e.published_commit, has_unpublished_changes=e.has_unpublished_changes,
            deleted=e.deleted, author=AuthorOut(name=e.author.name, email=e.author.email),
            updated_at=e.updated_at,
        )


class EntityPage(BaseModel):
    items: list[EntityOut]
    next_cursor: str | None


class VersionOut(BaseModel):
    version: int
    edition: int
    commit: str
    action: str
    message: str
    author: AuthorOut
    committed_at: datetime
    live: bool

    @classmethod
    def of(cls, v: VersionInfo) -> VersionOut:
        return cls(
            version=v.version, edition=v.edition, commit=v.commit, action=v.action, message=v.message,
            author=AuthorOut(name=v.author.name, email=v.author.email), committed_at=v.committed_at, live=v.live,
        )


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None


class RepoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    description: str = Field(default="", max_length=1000)


class RepoOut(BaseModel):
    name: str
    description: str
    main: str | None = Field(description="commit of refs/heads/main, the live site")
    draft: str | None = Field(description="commit of refs/heads/draft, every current draft")


class RepoList(BaseModel):
    items: list[RepoOut]


class PublishEntityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: int | None = Field(default=None, ge=1, description="publish this version (a fast-forward only)")


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    keys: list[str] | None = Field(default=None, max_length=10000)
    all_drafts: bool = False


class DiscardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: int = Field(ge=1)


class PublishedItemOut(BaseModel):
    key: str
    commit: str
    version: int
    edition: int
    deleted: bool


class PublishOut(BaseModel):
    commit: str | None = Field(description="the publish commit on main; null if nothing needed publishing")
    author: AuthorOut
    published_at: datetime | None
    items: list[PublishedItemOut]

    @classmethod
    def of(cls, r: PublishRecord) -> PublishOut:
        return cls(
            commit=r.commit, author=AuthorOut(name=r.author.name, email=r.author.email), published_at=r.published_at,
            items=[PublishedItemOut(key=i.key, commit=i.commit, version=i.version, edition=i.edition, deleted=i.deleted) for i in r.items],
        )

"""History: diffs, blame, a repository's activity and its publish log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import PUBLIC_AUTHORS, FromLibrary, preview_only
from api.schemas.entities import AuthorOut


class FieldChangeOut(FromLibrary):
    """One changed field between two versions, as a JSON Pointer and both values."""

    path: str = Field(description="JSON Pointer into the entity document")
    op: Literal["add", "remove", "replace"]
    old: Any
    new: Any


class DiffOut(FromLibrary):
    """What changed between two versions of an entity: field by field, and as a patch."""

    key: str
    from_commit: str | None
    to_commit: str
    from_version: int | None
    to_version: int
    changes: list[FieldChangeOut]
    patch: str = Field(description="git-style unified patch (diff --git headers)")


class BlameLineOut(FromLibrary):
    """One line of a file, and the version that last changed it."""

    line: int
    content: str
    commit: str
    version: int
    author: AuthorOut
    committed_at: datetime


class BlameOut(FromLibrary):
    """Who last changed each line of one of an entity's files."""

    key: str
    path: str
    lines: list[BlameLineOut]


class ChangeOut(FromLibrary):
    """One draft change in the repository's activity log."""

    key: str
    action: str
    version: int
    commit: str
    author: AuthorOut
    at: datetime


class ActivityPage(BaseModel):
    """One page of the activity log, newest first."""

    items: list[ChangeOut]
    next_cursor: str | None


class PublishLogItemOut(FromLibrary):
    """One entity in a publish-log entry."""

    key: str
    commit: str
    version: int
    deleted: bool


class PublishLogEntryOut(FromLibrary):
    """One publish (or unpublish) on main: who, when, what and why."""

    id: int
    commit: str = Field(description="the publish commit on main")
    author: AuthorOut | None = preview_only(PUBLIC_AUTHORS)
    at: datetime
    items: list[PublishLogItemOut]
    summary: str = Field(description='what it did: "Publish guide version 3", "Unpublish guide (gone)"')
    update_type: str | None
    change_note: str | None


class PublishLogPage(BaseModel):
    """One page of the publish log, newest first."""

    items: list[PublishLogEntryOut]
    next_cursor: str | None

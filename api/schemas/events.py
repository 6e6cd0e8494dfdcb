"""The event feed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import PUBLIC_AUTHORS, FromLibrary, preview_only
from api.schemas.entities import AuthorOut


class EventOut(FromLibrary):
    """One change in the event feed: an entity's draft or live view moved."""

    id: str = Field(description="the cursor that resumes right after this event")
    kind: Literal["draft_changed", "published", "unpublished", "deleted", "discarded"]
    view: Literal["draft", "live"]
    key: str
    commit: str
    action: str
    author: AuthorOut | None = preview_only(PUBLIC_AUTHORS)
    at: datetime
    dependents: list[str]
    update_type: str | None = Field(default=None, description="a live event's: what its publish said")
    change_note: str | None = None


class EventPageOut(BaseModel):
    """Events after a cursor, oldest first, and the cursor to resume from."""

    items: list[EventOut]
    cursor: str = Field(description="pass as ?after= to get what happens next")

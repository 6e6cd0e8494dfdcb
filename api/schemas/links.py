"""Links, link types, translations and expanded documents."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import FromLibrary


class LinkSummaryOut(FromLibrary):
    """A linked entity, summarised for a reader: enough to render a link to it."""

    key: str
    type: str
    title: str
    base_path: str | None
    locale: str
    content_id: str
    withdrawn: bool


class ExpandedLinksOut(FromLibrary):
    """An entity's links resolved to their targets, with breadcrumbs and translations."""

    key: str
    state: Literal["draft", "published"]
    locale: str = Field(description="the locale targets were chosen in, where their document has it")
    links: dict[str, list[LinkSummaryOut]] = Field(description="each link type, and each reverse type (children, ...)")
    breadcrumbs: list[LinkSummaryOut] = Field(description="parent, its parent, ...: nearest first, cycles cut")
    available_translations: list[LinkSummaryOut]


class KeyList(BaseModel):
    """Entity keys."""

    items: list[str]


class LinkTypeOut(FromLibrary):
    """A link type and how it behaves: its reverse name and whether breadcrumbs follow it."""

    name: str
    reverse: str | None = Field(description="the link type its targets show it under, e.g. parent -> children")
    breadcrumbs: bool = Field(description="followed transitively for breadcrumbs")
    overridden: bool


class LinkTypeList(BaseModel):
    """Every link type the repository knows."""

    items: list[LinkTypeOut]


class LinkTypePut(BaseModel):
    """How a link type behaves in this repository."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reverse: str | None = None
    breadcrumbs: bool = False


class TranslationOut(FromLibrary):
    """One locale of a document."""

    key: str
    locale: str
    title: str
    base_path: str | None
    draft: bool | None = Field(description="has a draft (null without preview rights)")
    live: bool


class DocumentOut(BaseModel):
    """A document (content_id) and each of its translations."""

    content_id: str
    translations: list[TranslationOut]

"""Erasures (ADR 0009): what to erase and the record of it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import FromLibrary
from api.schemas.entities import AuthorOut


class EraseRequest(BaseModel):
    """What to erase, and the reason kept on the record."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Field(
        min_length=1, max_length=10_000, description="why (a court order, a takedown notice): on the record"
    )
    version: int | None = Field(
        default=None, ge=1, description="erase only what this version wrote, wherever it recurs; omit for every version"
    )


class ErasureOut(FromLibrary):
    """An erasure as its record keeps it: what, who, when, why, and where each ref and each of
    the erased entity's rewritten commits went."""

    id: str
    key: str
    version: int | None = Field(description="the version erased, or null for every version")
    reason: str
    by: AuthorOut
    at: datetime
    refs: dict[str, tuple[str, str]] = Field(description="each ref the erasure moved: [before, after]")
    commits: dict[str, str] = Field(description="each rewritten commit of the entity: old id -> new id")

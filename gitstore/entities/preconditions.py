"""Preconditions of a draft write (seed 001's lock version): `IfMatch(commit)` writes only
if the draft tip is still that commit, `IfAbsent()` creates only, `IfExists()` changes only what
exists; a failed one raises StaleVersion."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitstore.errors import (
    InvalidInput,
)

SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class IfMatch:
    """Write only if the draft tip is this commit."""

    commit: str


@dataclass(frozen=True, slots=True)
class IfAbsent:
    """Write only if there is no current draft (never created, or deleted)."""


@dataclass(frozen=True, slots=True)
class IfExists:
    """Write only if there is a current draft (created and not deleted): HTTP's `If-Match: *`."""


Precondition = IfMatch | IfAbsent | IfExists | None


def check_precondition_format(expected: Precondition) -> None:
    if isinstance(expected, IfMatch) and not SHA.fullmatch(expected.commit):
        raise InvalidInput(
            "a precondition names a full commit id: 40 lower-case hex digits",
            errors=[{"loc": ["If-Match"], "msg": "not a 40-hex commit id"}],
        )

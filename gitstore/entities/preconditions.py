"""Preconditions of a draft write (seed 001's lock version): `IfMatch(commit)` writes only
if the draft tip is still that commit, `IfAbsent()` creates only, `IfExists()` changes only what
exists; a failed one raises StaleVersion."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gitstore.entities.document import (
    Content,
)
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

#: A rule a layer above adds to a write: called with the key and the content about to be
#: committed (never for a delete), under the drafts lock, so what it reads of other entities
#: cannot change before the write lands. It raises to refuse the write.
Check = Callable[[str, Content], None]


def check_precondition_format(expected: Precondition) -> None:
    if isinstance(expected, IfMatch) and not SHA.fullmatch(expected.commit):
        raise InvalidInput(
            "a precondition names a full commit id: 40 lower-case hex digits",
            errors=[{"loc": ["If-Match"], "msg": "not a 40-hex commit id"}],
        )

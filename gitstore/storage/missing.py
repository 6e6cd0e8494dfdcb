"""A missing object is damage too: telling it from a bug.

A loose file deleted by hand, or a pack that lost an object, is not caught by the loose-object
guard (storage.loose): libgit2 reports it as not found, which reaches Python as a bare KeyError
or pygit2.NotFoundError from wherever the read happened (a tree entry's data, a commit's
parent, a diff). Every object gitstore reads is named by a ref or by another object, so one
that is not there is as damaged as a truncated one: a CorruptObject, not an internal error.
Objects a caller may legitimately lack (a client's commit id, a bundle's pin) are looked up
with `in` or `.get()`, which answer without raising.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pygit2

from gitstore.errors import CorruptObject

log = logging.getLogger("gitstore.storage")

_OID = re.compile(r"\b[0-9a-f]{40}\b")


def missing_object(exc: BaseException) -> CorruptObject | None:
    """The CorruptObject that `exc` means, if it is libgit2 failing to find an object; else None.

    Only pygit2's own forms count: NotFoundError naming an object id, or the KeyError that
    `Repository[oid]` raises with the Oid itself. A KeyError of a dict (even one keyed by a
    40-hex entity key) is a bug and stays one."""
    if isinstance(exc, pygit2.NotFoundError):
        found = _OID.search(str(exc))
        oid = found.group() if found else None
    elif type(exc) is KeyError and len(exc.args) == 1 and isinstance(exc.args[0], pygit2.Oid):
        oid = str(exc.args[0])
    else:
        return None
    if oid is None:
        return None  # a reference or a path, not an object
    log.error("missing object %s (%s)", oid, exc)
    # The detail reaches callers, so it names no object; the log and `extra` do.
    return CorruptObject(
        "stored content is damaged: a git object this request needs is missing; "
        "`gitstore fsck` lists every damaged object",
        oid=oid,
        problem="missing",
    )


@contextmanager
def object_errors() -> Iterator[None]:
    """Raise a missing object, wherever libgit2 reports it inside, as CorruptObject."""
    try:
        yield
    except KeyError as exc:  # pygit2.NotFoundError is a KeyError too
        found = missing_object(exc)
        if found is None:
            raise
        raise found from exc

"""Container types and what each may hold (seed 004 "content constraints").

A type's `allowed_member_types` lists the types its members may have; None means any type,
and an empty list makes it a leaf that holds nothing. A member's type matches an allowed
type if it is that type or a dotted subtype of it: `component` admits `component.html`.

The defaults give the course hierarchy, a generic `container` that holds anything, and
leaves for every type nobody registered. A repository overrides them (seed 004's "content
flexibility") in its own registry, kept in git like everything else:

    refs/meta/types -> commit -> types.json    one line per overridden type

so a change of rules has an author, a time and a diff.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import orjson
import pygit2

from gitstore.entities.document import TYPE_NAME
from gitstore.entities.model import Author
from gitstore.errors import InvalidInput
from gitstore.repository import ContentRepository
from gitstore.storage.api import commit_on_ref, disk_errors, read_ref, write_files

__all__ = ["ContainerType", "TYPES_REF", "allows", "container_type", "container_types", "set_container_type"]

TYPES_REF = "refs/meta/types"
_FILE = "types.json"

DEFAULT_TYPES: dict[str, tuple[str, ...] | None] = {
    "course": ("section",),
    "section": ("subsection",),
    "subsection": ("unit",),
    "unit": ("component",),
    "component": (),
    "container": None,
}


@dataclass(frozen=True, slots=True)
class ContainerType:
    name: str
    allowed_member_types: tuple[str, ...] | None  # None: any type; (): a leaf
    overridden: bool  # set by this repository rather than a default

    @property
    def holds_members(self) -> bool:
        return self.allowed_member_types != ()


def allows(kind: ContainerType, member_type: str) -> bool:
    if kind.allowed_member_types is None:
        return True
    return any(member_type == t or member_type.startswith(f"{t}.") for t in kind.allowed_member_types)


def container_type(repo: ContentRepository, name: str) -> ContainerType:
    """The rules for entities of type `name` in this repository."""
    _check_name(name)
    overrides = _overrides(repo)
    if name in overrides:
        return ContainerType(name, overrides[name], True)
    return ContainerType(name, DEFAULT_TYPES.get(name, ()), False)


def container_types(repo: ContentRepository) -> list[ContainerType]:
    """Every type with rules: the defaults and this repository's overrides, by name."""
    names = sorted(DEFAULT_TYPES.keys() | _overrides(repo).keys())
    return [container_type(repo, name) for name in names]


def set_container_type(
    repo: ContentRepository, name: str, allowed_member_types: list[str] | None, *, author: Author
) -> ContainerType:
    """Override the rules for `name`. Existing containers are not re-checked: the rules apply
    to the next write of each (seed 004 enforces restrictions on write)."""
    _check_name(name)
    problems = []
    for i, member in enumerate(allowed_member_types or []):
        if not isinstance(member, str) or not TYPE_NAME.fullmatch(member):
            problems.append({"loc": ["allowed_member_types", i], "msg": f"{member!r} is not a type name"})
    if problems:
        raise InvalidInput("not a valid container type", errors=problems)
    allowed = None if allowed_member_types is None else tuple(dict.fromkeys(allowed_member_types))
    git = repo.storage.git
    # Under the drafts lock: a container write checks its members against one set of rules.
    with repo.storage.drafts_lock.held(), disk_errors():
        head = read_ref(git, TYPES_REF)
        overrides = dict(_overrides(repo))
        overrides[name] = allowed
        sig = pygit2.Signature(author.name, author.email)
        shown = "any type" if allowed is None else ", ".join(allowed) or "nothing"
        tree = write_files(git, {_FILE: _dump(overrides)})
        commit_on_ref(git, TYPES_REF, expected=head, author=sig, message=f"Type {name} holds {shown}\n", tree=tree)
    return ContainerType(name, allowed, True)


def _check_name(name: str) -> None:
    if not TYPE_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a type name", errors=[{"loc": ["type"], "msg": "not a type name"}])


_cache: dict[str, tuple[pygit2.Oid, dict[str, tuple[str, ...] | None]]] = {}
_cache_guard = threading.Lock()


def _overrides(repo: ContentRepository) -> dict[str, tuple[str, ...] | None]:
    git = repo.storage.git
    head = read_ref(git, TYPES_REF)
    if head is None:
        return {}
    cached = _cache.get(str(repo.path))
    if cached is not None and cached[0] == head:
        return cached[1]
    blob = git[head].tree[_FILE]
    raw = orjson.loads(blob.data)  # type: ignore[attr-defined]
    found = {
        name: None if rule["allowed_member_types"] is None else tuple(rule["allowed_member_types"])
        for name, rule in raw.items()
    }
    with _cache_guard:
        _cache[str(repo.path)] = (head, found)
    return found


def _dump(overrides: dict[str, tuple[str, ...] | None]) -> bytes:
    rows = [
        b"  "
        + orjson.dumps(name)
        + b": "
        + orjson.dumps({"allowed_member_types": None if allowed is None else list(allowed)})
        for name, allowed in sorted(overrides.items())
    ]
    return b"{\n" + b",\n".join(rows) + b"\n}\n"

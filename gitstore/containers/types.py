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

from collections.abc import Callable
from dataclasses import dataclass

from gitstore.entities.api import TYPE_NAME, Author, signature
from gitstore.errors import InvalidInput
from gitstore.repository import ContentRepository
from gitstore.storage.api import disk_errors, in_order, read_settings, write_settings

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
    repo: ContentRepository,
    name: str,
    allowed_member_types: list[str] | None,
    *,
    author: Author,
    check: Callable[[ContainerType], None] | None = None,
) -> ContainerType:
    """Override the rules for `name`. `check` (the containers layer's) runs under the drafts
    lock before anything is written, and refuses rules that existing containers break."""
    _check_name(name)
    problems = []
    for i, member in enumerate(allowed_member_types or []):
        if not isinstance(member, str) or not TYPE_NAME.fullmatch(member):
            problems.append({"loc": ["allowed_member_types", i], "msg": f"{member!r} is not a type name"})
    if problems:
        raise InvalidInput("not a valid container type", errors=problems)
    allowed = None if allowed_member_types is None else tuple(dict.fromkeys(allowed_member_types))
    # Under the drafts lock: a container write checks its members against one set of rules.
    with in_order(repo.storage, "drafts"), disk_errors():
        if check is not None:
            check(ContainerType(name, allowed, True))
        entries = read_settings(repo.storage.git, TYPES_REF, _FILE)
        entries = {**entries, name: {"allowed_member_types": None if allowed is None else list(allowed)}}
        shown = "any type" if allowed is None else ", ".join(allowed) or "nothing"
        write_settings(
            repo.storage.git,
            TYPES_REF,
            _FILE,
            entries,
            author=signature(author),
            message=f"Type {name} holds {shown}\n",
        )
    return ContainerType(name, allowed, True)


def _check_name(name: str) -> None:
    if not TYPE_NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a type name", errors=[{"loc": ["type"], "msg": "not a type name"}])


def _overrides(repo: ContentRepository) -> dict[str, tuple[str, ...] | None]:
    return {
        name: None if rule["allowed_member_types"] is None else tuple(rule["allowed_member_types"])
        for name, rule in read_settings(repo.storage.git, TYPES_REF, _FILE).items()
    }

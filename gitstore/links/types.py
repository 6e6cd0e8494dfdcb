"""Link types and how each expands: its reverse name and whether it is followed for breadcrumbs.

    parent    reverse `children`, followed transitively (breadcrumbs)
    related   reverse `related_from`

Any other link type works without registering; it has no reverse until a repository gives it
one, kept in git like the container types:

    refs/meta/link-types -> commit -> link-types.json    one line per overridden type
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitstore.entities.api import Author, signature
from gitstore.errors import InvalidInput
from gitstore.repository import ContentRepository
from gitstore.storage.api import disk_errors, in_order, read_settings, write_settings

__all__ = ["LINK_TYPES_REF", "LinkType", "link_type", "link_types", "set_link_type"]

LINK_TYPES_REF = "refs/meta/link-types"
_FILE = "link-types.json"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

DEFAULTS: dict[str, dict[str, object]] = {
    "parent": {"reverse": "children", "breadcrumbs": True},
    "related": {"reverse": "related_from", "breadcrumbs": False},
}


@dataclass(frozen=True, slots=True)
class LinkType:
    name: str
    reverse: str | None  # the link type its targets show it under, e.g. parent -> children
    breadcrumbs: bool  # followed from target to target, stopping on a cycle
    overridden: bool


def link_type(repo: ContentRepository, name: str) -> LinkType:
    _check_name(name, ("name",))
    rules = _rules(repo)
    rule = rules.get(name)
    if rule is None:
        return LinkType(name, None, False, False)
    return LinkType(name, rule["reverse"], rule["breadcrumbs"], name in _overrides(repo))  # type: ignore[arg-type]


def link_types(repo: ContentRepository) -> list[LinkType]:
    """Every link type with a rule: the defaults and this repository's overrides."""
    return [link_type(repo, name) for name in sorted(_rules(repo))]


def reverse_names(repo: ContentRepository) -> dict[str, str]:
    """link type -> its reverse name, for every type that has one."""
    return {name: rule["reverse"] for name, rule in _rules(repo).items() if rule["reverse"]}  # type: ignore[misc]


def breadcrumb_types(repo: ContentRepository) -> list[str]:
    return sorted(name for name, rule in _rules(repo).items() if rule["breadcrumbs"])


def set_link_type(
    repo: ContentRepository, name: str, *, reverse: str | None, breadcrumbs: bool, author: Author
) -> LinkType:
    """Give link type `name` a reverse name and breadcrumb behaviour (a commit on the registry)."""
    _check_name(name, ("name",))
    if reverse is not None:
        _check_name(reverse, ("reverse",))
    # Under the drafts lock: a draft write checks its link types against one set of rules.
    with in_order(repo.storage, "drafts"), disk_errors():
        rules = _rules(repo)
        taken = {rule["reverse"]: other for other, rule in rules.items() if other != name and rule["reverse"]}
        problems = []
        if reverse is not None and (reverse in taken or reverse in rules or reverse == name):
            problems.append({"loc": ["reverse"], "msg": f"{reverse!r} already names a link type or reverse"})
        if name in taken:
            problems.append({"loc": ["name"], "msg": f"{name!r} is the reverse of {taken[name]!r}"})
        if problems:
            raise InvalidInput("not a valid link type", errors=problems)
        git = repo.storage.git
        entries = {**read_settings(git, LINK_TYPES_REF, _FILE), name: {"reverse": reverse, "breadcrumbs": breadcrumbs}}
        shown = f"reverse {reverse}" if reverse else "no reverse"
        write_settings(
            git,
            LINK_TYPES_REF,
            _FILE,
            entries,
            author=signature(author),
            message=f"Link type {name}: {shown}{', breadcrumbs' if breadcrumbs else ''}\n",
        )
    return LinkType(name, reverse, breadcrumbs, True)


def _overrides(repo: ContentRepository) -> dict[str, dict[str, object]]:
    return read_settings(repo.storage.git, LINK_TYPES_REF, _FILE)


def _rules(repo: ContentRepository) -> dict[str, dict[str, object]]:
    return {**DEFAULTS, **_overrides(repo)}


def _check_name(name: str, loc: tuple[str, ...]) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a link type name", errors=[{"loc": list(loc), "msg": "not a link type"}])

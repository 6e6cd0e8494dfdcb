"""What a draft's links must satisfy, checked under the drafts lock on every write (so the
targets cannot be deleted between the check and the commit)."""

from __future__ import annotations

from typing import Any

from gitstore.entities.api import Content, DraftRule, Planned
from gitstore.errors import InvalidDocument
from gitstore.links.types import reverse_names
from gitstore.repository import ContentRepository

__all__ = ["Links", "check_links"]


class Links(DraftRule):
    """Links' part of every draft write: a draft's links must name entities that are there."""

    def reads_others(self, planned: Planned) -> bool:
        return bool(planned.doc.links)

    def check(self, repo: ContentRepository, planned: Planned) -> None:
        if planned.doc.links:  # no links: nothing to read, nothing to refuse
            check_links(repo, planned.key, planned.doc)


def check_links(repo: ContentRepository, key: str, doc: Content) -> None:
    """Every target is an entity of this repository that is not deleted in draft, and no link
    type is a name that expansion computes (a reverse such as `children`). Every problem in one
    InvalidDocument. A link the page already has, in its draft or live, stays when its target is
    deleted: expansion leaves out what is not visible, and refusing it would block every later
    edit (and discard) of the linking page. Only a new link to a deleted target is refused."""
    targets = sorted({t for ts in doc.links.values() for t in ts} - {key})
    known = repo.index.states(targets)
    had: set[tuple[str, str]] = set()
    if any(state.draft_deleted for state in known.values()):
        for view in ("draft", "live"):
            had.update((kind, t) for kind, ts in repo.index.links_of(key, view).items() for t in ts)
    computed = {reverse: name for name, reverse in reverse_names(repo).items()}
    problems: list[dict[str, Any]] = []
    for link_type, keys in sorted(doc.links.items()):
        if link_type in computed:
            problems.append(
                {
                    "loc": ["links", link_type],
                    "msg": f"{link_type!r} is computed from {computed[link_type]!r} links; link the other way",
                }
            )
        for i, target in enumerate(keys):
            if target == key:
                continue
            if target not in known:
                problems.append({"loc": ["links", link_type, i], "msg": f"unknown entity {target!r}"})
            elif known[target].draft_deleted and (link_type, target) not in had:
                problems.append({"loc": ["links", link_type, i], "msg": f"{target!r} is deleted"})
    if problems:
        raise InvalidDocument(f"{key!r} links to what it cannot", errors=problems)

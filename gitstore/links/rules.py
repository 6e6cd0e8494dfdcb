"""What a draft's links must satisfy, checked under the drafts lock on every write (so the
targets cannot be deleted between the check and the commit)."""

from __future__ import annotations

from gitstore.entities.document import Content
from gitstore.errors import InvalidDocument
from gitstore.links.types import reverse_names
from gitstore.repository import ContentRepository


def check_links(repo: ContentRepository, key: str, doc: Content) -> None:
    """Every target is an entity of this repository, and no link type is a name that expansion
    computes (a reverse such as `children`). Every problem in one InvalidDocument. A target
    that was deleted stays linkable, as it stays linked: expansion leaves out what is not
    visible, and refusing it would block every later edit (and discard) of the linking page."""
    targets = sorted({t for ts in doc.links.values() for t in ts} - {key})
    known = repo.index.states(targets)
    computed = {reverse: name for name, reverse in reverse_names(repo).items()}
    problems = []
    for link_type, keys in sorted(doc.links.items()):
        if link_type in computed:
            problems.append(
                {
                    "loc": ["links", link_type],
                    "msg": f"{link_type!r} is computed from {computed[link_type]!r} links; link the other way",
                }
            )
        for i, target in enumerate(keys):
            if target != key and target not in known:
                problems.append({"loc": ["links", link_type, i], "msg": f"unknown entity {target!r}"})
    if problems:
        raise InvalidDocument(f"{key!r} links to what it cannot", errors=problems)

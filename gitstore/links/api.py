"""Links between entities (seeds 001 and 002, GOV.UK's model). This layer's rule and publish
part plug into the write and publish paths below it (gitstore.content registers them).

    Links            the draft write rule: a draft's links name entities that are there
    Dependents       the publish part: which other entities a renderer must re-present
    draft_dependents what a commit on `draft` records of each key it changes
    expanded_links / dependents      GOV.UK-style link expansion and its inverse
    translations                     a document's locales (seed 002: content_id + locale)
    link_type / link_types           the link types' rules (gitstore.content.set_link_type
                                     changes one)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from gitstore.entities.api import TAKEN_DOWN
from gitstore.errors import NotFound
from gitstore.index.api import PublishedRow
from gitstore.links.expansion import ExpandedLinks, LinkSummary, dependents, dependents_of_each, expanded_links
from gitstore.links.rules import Links
from gitstore.links.types import LinkType, link_type, link_types, reverse_names, set_link_type
from gitstore.names import validate_key
from gitstore.publishing.api import PublishNote, PublishPart, PublishRecord
from gitstore.repository import ContentRepository

__all__ = [
    "Dependents",
    "ExpandedLinks",
    "LinkSummary",
    "LinkType",
    "Links",
    "PublishNote",
    "Translation",
    "dependents",
    "draft_dependents",
    "expanded_links",
    "link_type",
    "link_types",
    "reverse_names",
    "set_link_type",
    "translations",
]


# -- publishing -------------------------------------------------------------------------------


class Dependents(PublishPart):
    """Links' part of every publish: the record's `dependents`, every other entity a renderer
    must re-present (ADR 0003), and each moved entity's live dependents recorded in the
    publish commit for its event (ADR 0011)."""

    def before(self, repo: ContentRepository, keys: Sequence[str]) -> set[str]:
        """What `keys` link to live with a type that has a reverse: if a publish drops one of
        those links, the old target's reverse links change, so it must be re-presented too."""
        if not keys:
            return set()
        return repo.index.targets_of(keys, "live", sorted(reverse_names(repo)))

    def describe(self, repo: ContentRepository, rows: list[PublishedRow]) -> dict[str, list[str]]:
        """The live dependents as they are once the publish is live, a fact of that moment."""
        with repo.index.as_if_published(rows):
            found = dependents_of_each(repo, [r.key for r in rows], state="published")
        return {r.key: deps for r, deps in zip(rows, found, strict=True)}

    def after(self, repo: ContentRepository, record: PublishRecord, remembered: object) -> PublishRecord:
        moved = [item.key for item in record.items]
        if not moved:
            return record
        assert isinstance(remembered, set)
        found = set(dependents(repo, moved, state="published")) | remembered
        return dataclasses.replace(record, dependents=tuple(sorted(found - set(moved))))


def draft_dependents(repo: ContentRepository, keys: Sequence[str]) -> dict[str, list[str]]:
    """What a commit on `draft` records of each key it changes, for its event (ADR 0011): the
    draft view's dependents of each, as the index knows them when the commit is made."""
    return dict(zip(keys, dependents_of_each(repo, keys, state="draft"), strict=True))


# -- documents --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Translation:
    """One locale of a document: the entity that holds it, and where it is."""

    key: str
    locale: str
    title: str
    base_path: str | None
    draft: bool  # has a draft that is not deleted
    live: bool


def translations(repo: ContentRepository, content_id: str, *, include_drafts: bool) -> list[Translation]:
    """Every locale of document `content_id`, by locale. Without `include_drafts`, only what is
    live. Raises NotFound if the document has no translation visible."""
    validate_key(content_id, loc=("content_id",))
    live = {s.key: s for s in repo.index.translations([content_id], "live") if s.unpublishing not in TAKEN_DOWN}
    draft = {s.key: s for s in repo.index.translations([content_id], "draft")} if include_drafts else {}
    found = []
    for key in sorted(live.keys() | draft.keys()):
        shown = draft.get(key) or live[key]
        found.append(Translation(key, shown.locale, shown.title, shown.base_path, key in draft, key in live))
    if not found:
        raise NotFound(f"no document {content_id!r}" + ("" if include_drafts else " is live"))
    return sorted(found, key=lambda t: (t.locale, t.key))

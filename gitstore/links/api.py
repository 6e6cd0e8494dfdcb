"""The top of gitstore's domain: every draft write, publish and unpublish goes through here so
that the rules of every layer hold (links < containers < history < publishing < entities),
and every publish says which other entities a renderer must re-present.

    put_draft / patch_draft / restore_version / discard_draft / write_from_base / delete_entity
        the containers layer's writes, with links checked under the drafts lock
    publish / publish_all_drafts / unpublish / republish
        the lower layers' operations, with `dependents` filled in
    expanded_links / dependents      GOV.UK-style link expansion and its inverse
    translations                     a document's locales (seed 002: content_id + locale)
    link_type / link_types / set_link_type
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitstore.containers import api as containers
from gitstore.entities.api import IfMatch
from gitstore.entities.document import TAKEN_DOWN, Content
from gitstore.entities.model import Author, WriteResult
from gitstore.errors import NotFound
from gitstore.index.api import PublishedRow
from gitstore.links.expansion import ExpandedLinks, LinkSummary, dependents, dependents_of_each, expanded_links
from gitstore.links.rules import check_links
from gitstore.links.types import LinkType, link_type, link_types, reverse_names, set_link_type
from gitstore.names import validate_key
from gitstore.publishing import unpublishing
from gitstore.publishing.api import Describe, PublishNote, PublishRecord, PublishTarget
from gitstore.repository import ContentRepository

__all__ = [
    "ExpandedLinks",
    "PublishNote",
    "LinkSummary",
    "LinkType",
    "Translation",
    "delete_entity",
    "dependents",
    "draft_dependents",
    "discard_draft",
    "expanded_links",
    "link_type",
    "link_types",
    "patch_draft",
    "publish",
    "publish_all_drafts",
    "put_draft",
    "republish",
    "restore_version",
    "set_link_type",
    "translations",
    "unpublish",
    "write_from_base",
]


# -- draft writes -----------------------------------------------------------------------------


def _check(repo: ContentRepository) -> Any:
    def check(key: str, doc: Content) -> None:
        check_links(repo, key, doc)

    return check


def put_draft(repo: ContentRepository, key: str, document: Any, **kwargs: Any) -> WriteResult:
    return containers.put_draft(repo, key, document, check=_check(repo), **kwargs)


def patch_draft(repo: ContentRepository, key: str, patch: dict[str, Any], **kwargs: Any) -> WriteResult:
    return containers.patch_draft(repo, key, patch, check=_check(repo), **kwargs)


def restore_version(repo: ContentRepository, key: str, version: int | None = None, **kwargs: Any) -> WriteResult:
    return containers.restore_version(repo, key, version, check=_check(repo), **kwargs)


def discard_draft(repo: ContentRepository, key: str, **kwargs: Any) -> WriteResult:
    return containers.discard_draft(repo, key, check=_check(repo), **kwargs)


def write_from_base(repo: ContentRepository, key: str, base: str, **kwargs: Any) -> WriteResult:
    return containers.write_from_base(repo, key, base, check=_check(repo), **kwargs)


def delete_entity(repo: ContentRepository, key: str, **kwargs: Any) -> WriteResult:
    """Links to a deleted entity stay as written; expansion leaves it out once the delete is live."""
    return containers.delete_entity(repo, key, **kwargs)


# -- publishing -------------------------------------------------------------------------------


def publish(
    repo: ContentRepository, targets: Sequence[PublishTarget], *, author: Author, note: PublishNote | None = None
) -> PublishRecord:
    """containers.publish, plus the dependents of everything it moved."""
    with repo.storage.publish_lock.held():
        orphans = _reverse_targets(repo, [t.key for t in targets])
        record = containers.publish(repo, targets, author=author, note=note, describe=_describe(repo))
        return _with_dependents(repo, record, orphans)


def publish_all_drafts(repo: ContentRepository, *, author: Author, note: PublishNote | None = None) -> PublishRecord:
    with repo.storage.publish_lock.held():
        orphans = _reverse_targets(repo, repo.index.unpublished_keys())
        record = containers.publish_all_drafts(repo, author=author, note=note, describe=_describe(repo))
        return _with_dependents(repo, record, orphans)


def unpublish(repo: ContentRepository, key: str, kind: str, *, author: Author, **kwargs: Any) -> PublishRecord:
    """unpublishing.unpublish, plus dependents: every page that showed it must drop it."""
    record = unpublishing.unpublish(repo, key, kind, author=author, describe=_describe(repo), **kwargs)
    return _with_dependents(repo, record, set())


def republish(repo: ContentRepository, key: str, *, author: Author, expected: IfMatch | None = None) -> PublishRecord:
    record = unpublishing.republish(repo, key, author=author, expected=expected, describe=_describe(repo))
    return _with_dependents(repo, record, set())


def draft_dependents(repo: ContentRepository, keys: Sequence[str]) -> dict[str, list[str]]:
    """What a commit on `draft` records of each key it changes, for its event (ADR 0011): the
    draft view's dependents of each, as the index knows them when the commit is made."""
    return dict(zip(keys, dependents_of_each(repo, keys, state="draft"), strict=True))


def _describe(repo: ContentRepository) -> Describe:
    """What a publish commit records of each entity it moves, for its event (ADR 0011): the
    live dependents as they are once the publish is live, a fact of that moment."""

    def describe(rows: list[PublishedRow]) -> dict[str, list[str]]:
        with repo.index.as_if_published(rows):
            found = dependents_of_each(repo, [r.key for r in rows], state="published")
        return {r.key: deps for r, deps in zip(rows, found, strict=True)}

    return describe


def _reverse_targets(repo: ContentRepository, keys: Sequence[str]) -> set[str]:
    """What `keys` link to live with a type that has a reverse: if a publish drops one of those
    links, the old target's reverse links change, so it must be re-presented too."""
    return repo.index.targets_of(keys, "live", sorted(reverse_names(repo)))


def _with_dependents(repo: ContentRepository, record: PublishRecord, orphans: set[str]) -> PublishRecord:
    moved = [item.key for item in record.items]
    if not moved:
        return record
    found = set(dependents(repo, moved, state="published")) | orphans
    return dataclasses.replace(record, dependents=tuple(sorted(found - set(moved))))


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

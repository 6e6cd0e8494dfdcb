"""Expanded links and dependents, answered from the index (never by walking commits).

Expansion shows what a page says about its neighbours: each link as a summary of its target in
the same view, in the reader's locale where a translation exists; the reverse links other
entities make to it (`children`, `related_from`); and its breadcrumbs. Dependents are the
inverse: every entity whose expansion includes this one, i.e. what a renderer must
re-present after it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gitstore.entities.api import TAKEN_DOWN, get_entity, placeholder_kind
from gitstore.errors import EntityNotFound, InvalidInput
from gitstore.index.api import Summary
from gitstore.links.types import breadcrumb_types, reverse_names
from gitstore.names import validate_key
from gitstore.publishing.api import serve
from gitstore.repository import ContentRepository

__all__ = ["ExpandedLinks", "LinkSummary", "dependents", "expanded_links", "view_of"]

_MAX_BREADCRUMBS = 64


class LinkSummary(NamedTuple):  # a tuple: a hub page builds thousands of them per request
    key: str
    type: str
    title: str
    base_path: str | None
    locale: str
    content_id: str
    withdrawn: bool


@dataclass(frozen=True, slots=True)
class ExpandedLinks:
    key: str
    state: str
    locale: str
    links: dict[str, list[LinkSummary]] = field(default_factory=dict)  # direct and reverse link types
    breadcrumbs: list[LinkSummary] = field(default_factory=list)  # nearest parent first
    available_translations: list[LinkSummary] = field(default_factory=list)


def view_of(state: str) -> str:
    """The index's name for a reader's state: "draft" or "live"."""
    if state not in ("draft", "published"):
        raise InvalidInput("state is draft or published", errors=[{"loc": ["state"], "msg": "unknown state"}])
    return "draft" if state == "draft" else "live"


def expanded_links(
    repo: ContentRepository, key: str, *, state: str = "published", locale: str | None = None
) -> ExpandedLinks:
    """`key`'s links in `state`, each target in `locale` (default: the entity's own) where the
    document has that translation, else in the document's default locale.

    Targets that are not visible in the view are left out: in a live view, anything unpublished,
    deleted, gone, vanished or redirected (withdrawn targets stay, marked), and placeholder types.
    """
    validate_key(key)
    view = view_of(state)
    index = repo.index
    me = index.summaries([key], view).get(key)
    if me is None:
        raise EntityNotFound(f"{key!r} is not {'a draft' if view == 'draft' else 'live'}", key=key)
    if view == "live" and me.unpublishing in TAKEN_DOWN:
        serve(get_entity(repo, key, state="published"))  # raises Gone or Redirected, as a read would
    locale = locale or me.locale
    chooser = _Chooser(repo, view, locale)
    result = ExpandedLinks(key, state, locale)
    translations = index.translations([me.content_id], view)  # me among them

    direct = index.links_of(key, view)
    chooser.prefetch(t for targets in direct.values() for t in targets)
    for link_type, targets in direct.items():
        shown = _unique(chooser.pick(t) for t in targets)
        if shown:
            result.links[link_type] = shown

    reverses = reverse_names(repo)
    if reverses:
        mine = [s.key for s in translations]
        by_type: dict[str, list[tuple[Any, ...]]] = {}
        for row in index.linking_to(mine, view, sorted(reverses)):
            by_type.setdefault(row[0], []).append(row)
        for link_type, rows in sorted(by_type.items()):
            shown = _reverse_links(rows, locale)
            if shown:
                result.links.setdefault(reverses[link_type], []).extend(shown)

    crumbs = breadcrumb_types(repo)
    if crumbs:
        result.breadcrumbs.extend(_breadcrumbs(repo, key, view, crumbs[0], chooser))

    result.available_translations.extend(s for s in (_renderable(t) for t in translations) if s is not None)
    return result


def dependents(repo: ContentRepository, keys: Sequence[str], *, state: str = "published") -> list[str]:
    """Every entity whose expanded representation in `state` includes one of `keys`, by key:
    what links to it (or to another of its document's translations), what it links to with a
    type that has a reverse, everything whose breadcrumbs pass through it, every container
    above it, and its other translations. A live view names only what is live: an entity that
    is not has no live representation to re-present (and naming it would tell readers that a
    draft exists)."""
    for key in keys:
        validate_key(key)
    view = view_of(state)
    found = repo.index.dependents(
        keys,
        view,
        reverse_types=sorted(reverse_names(repo)),
        breadcrumb_types=breadcrumb_types(repo),
    )
    if view == "live":
        found &= repo.index.summaries(sorted(found), "live").keys()
    return sorted(found)


def dependents_of_each(repo: ContentRepository, keys: Sequence[str], *, state: str = "published") -> list[list[str]]:
    """`dependents` of each key on its own, in one set-based pass."""
    view = view_of(state)
    found = repo.index.dependents_each(
        keys, view, reverse_types=sorted(reverse_names(repo)), breadcrumb_types=breadcrumb_types(repo)
    )
    if view == "live":
        live = repo.index.summaries(sorted(set().union(*found.values())), "live").keys()
        found = {key: deps & live for key, deps in found.items()}
    return [sorted(found[key]) for key in keys]


class _Chooser:
    """Picks, for a link target, the translation a reader in `locale` sees."""

    def __init__(self, repo: ContentRepository, view: str, locale: str) -> None:
        self.index, self.view, self.locale = repo.index, view, locale
        self.named: dict[str, Summary] = {}
        self.documents: dict[str, list[Summary]] = {}

    def prefetch(self, keys: Iterable[str]) -> None:
        wanted = [k for k in dict.fromkeys(keys) if k not in self.named]
        self.named.update(self.index.summaries(wanted, self.view))
        # Only documents with more than the named translation need a second look.
        documents = sorted({s.content_id for s in self.named.values()} - self.documents.keys())
        for summary in self.index.translations(documents, self.view):
            self.documents.setdefault(summary.content_id, []).append(summary)

    def pick(self, target: str) -> LinkSummary | None:
        if target not in self.named:
            self.prefetch([target])
        named = self.named.get(target)
        if named is None:
            return None  # not visible in this view: unpublished, deleted, or unknown
        # Only translations that can be shown are candidates: a gone Welsh page falls back to
        # the document's default rather than taking the link away.
        shown = [t for t in self.documents.get(named.content_id, [named]) if _renderable(t) is not None]
        chosen = (
            _in_locale(shown, self.locale)
            or next((t for t in shown if t.key == named.content_id), None)
            or (named if named in shown else None)
        )
        return None if chosen is None else _renderable(chosen)


def _in_locale(summaries: Iterable[Summary], locale: str) -> Summary | None:
    return next((s for s in summaries if s.locale == locale), None)


def _reverse_links(rows: list[tuple[Any, ...]], locale: str) -> list[LinkSummary]:
    """Sources that link here (rows of `index.linking_to`), by key, one per document: the
    reader's locale, else the document's own key, else the first. One pass: a hub can have
    thousands of them, nearly all from documents with a single translation."""
    chosen: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        # row: link type, key, type, title, base_path, locale, content_id, unpublishing
        document = row[6]
        have = chosen.get(document)
        if have is None:
            chosen[document] = row
        elif have[1] != row[1] and _rank(row, locale) < _rank(have, locale):
            chosen[document] = row
    shown = []
    for row in sorted(chosen.values(), key=lambda r: r[1]):
        if placeholder_kind(row[2], row[7]):
            continue
        shown.append(LinkSummary(row[1], row[2], row[3], row[4], row[5], row[6], row[7] == "withdrawn"))
    return shown


def _rank(row: tuple[Any, ...], locale: str) -> int:
    return 0 if row[5] == locale else 1 if row[1] == row[6] else 2


def _renderable(s: Summary) -> LinkSummary | None:
    if placeholder_kind(s.type, s.unpublishing):
        return None
    return LinkSummary(s.key, s.type, s.title, s.base_path, s.locale, s.content_id, s.unpublishing == "withdrawn")


def _unique(summaries: Iterable[LinkSummary | None]) -> list[LinkSummary]:
    seen: set[str] = set()
    shown = []
    for s in summaries:
        if s is not None and s.key not in seen:
            seen.add(s.key)
            shown.append(s)
    return shown


def _breadcrumbs(repo: ContentRepository, key: str, view: str, link_type: str, chooser: _Chooser) -> list[LinkSummary]:
    """Follow `link_type` (its first target) from `key` upwards, stopping at a cycle, at a
    target not visible in the view, or after a sane depth."""
    trail: list[LinkSummary] = []
    seen = {key}
    current = key
    while len(trail) < _MAX_BREADCRUMBS:
        targets = repo.index.links_of(current, view).get(link_type)
        if not targets:
            break
        step = chooser.pick(targets[0])
        if step is None or step.key in seen:
            break
        trail.append(step)
        seen.add(step.key)
        current = step.key
    return trail

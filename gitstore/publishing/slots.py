"""Seed 002's slots: a base_path has one holder and a document (content_id) one translation
per locale, among drafts and among live editions. `DraftSlots` is the draft write path's rule
(gitstore.entities.rules); publishing checks the live side itself (gitstore.publishing.publish)."""

from __future__ import annotations

from collections.abc import Sequence

from gitstore.entities.api import (
    Content,
    DraftRule,
    Planned,
    document_id,
    is_placeholder,
    leaves,
    load_snapshot,
    published_commit,
)
from gitstore.errors import BasePathTaken, TranslationTaken
from gitstore.repository import ContentRepository, draft_ref
from gitstore.storage.api import GitHandle, read_ref

__all__ = ["DraftSlots"]


class DraftSlots(DraftRule):
    """A draft claims its base_path and its translation slot; taking one another draft holds
    is refused, unless that draft is a placeholder, which is deleted in the same batch. A draft
    at a path another entity holds live is allowed, with a warning."""

    def claims(self, key: str, doc: Content) -> frozenset[str]:
        slot = f"document:{document_id(key, doc)}:{doc.locale}"
        return frozenset((slot,) if doc.base_path is None else (slot, f"path:{doc.base_path}"))

    def check_claims(self, repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, str]:
        displaced = _check_draft_uniqueness(repo, plans)
        return {holder: f"Delete {holder}: {by} takes its base_path" for holder, by in displaced.items()}

    def warnings(self, repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, tuple[str, ...]]:
        return _live_path_warnings(repo, plans)


def _check_draft_uniqueness(repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, str]:
    """Among drafts (seed 002), checked under the drafts lock: a base_path has one holder, and
    a document (content_id) has one translation per locale. A placeholder (a `redirect` or
    `gone` entity, or one unpublished as such) gives its path up: returns those to delete in
    the same batch (holder -> the key taking its path)."""
    git = repo.storage.git
    moving = {p.key: p for p in plans}
    paths: dict[str, str] = {}
    translations: dict[tuple[str, str], str] = {}
    displace: dict[str, str] = {}
    for p in plans:
        if p.deleted:
            continue
        path = p.doc.base_path
        if path is not None:
            holder = paths.get(path) or repo.index.draft_holder(path, other_than=p.key)
            if holder is not None and holder not in paths.values() and _leaves(moving.get(holder), path=path):
                holder = None  # that draft leaves the path in this same batch
            if holder is not None and holder not in moving and _is_placeholder_draft(git, holder):
                displace[holder] = p.key
                holder = None
            if holder is not None:
                raise BasePathTaken(
                    f"base_path {path!r} is held by the draft of {holder!r}", holder=holder, base_path=path
                )
            paths[path] = p.key
        document = (document_id(p.key, p.doc), p.doc.locale)
        holder = translations.get(document) or repo.index.translation_holder(*document, other_than=p.key)
        if (
            holder is not None
            and holder not in translations.values()
            and _leaves(moving.get(holder), document=document)
        ):
            holder = None
        if holder is not None:
            raise TranslationTaken(
                f"{holder!r} is already the {document[1]!r} translation of document {document[0]!r}",
                holder=holder,
                content_id=document[0],
                locale=document[1],
            )
        translations[document] = p.key
    return displace


def _is_placeholder_draft(git: GitHandle, key: str) -> bool:
    tip = read_ref(git, draft_ref(key))
    return tip is not None and is_placeholder(load_snapshot(git, tip).document)


def _leaves(plan: Planned | None, *, path: str | None = None, document: tuple[str, str] | None = None) -> bool:
    """Whether a change in the same batch moves its entity away from `path` or `document`."""
    return plan is not None and leaves(plan.key, plan.doc, plan.deleted, base_path=path, document=document)


def _live_path_warnings(repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, tuple[str, ...]]:
    """A draft may sit at a path another entity holds live (seed 002); say so, because
    publishing it will be refused until the holder leaves, unless the holder is a placeholder."""
    wanted = {p.doc.base_path: p.key for p in plans if p.doc.base_path is not None and not p.deleted}
    warnings: dict[str, tuple[str, ...]] = {}
    git = repo.storage.git
    for path, holder in repo.index.live_holders(list(wanted)).items():
        key = wanted[path]
        if holder == key:
            continue
        live = published_commit(repo, holder)
        if live is not None and is_placeholder(load_snapshot(git, live).document):
            warnings[key] = (f"base_path {path!r} is live on the placeholder {holder!r}; publishing this replaces it",)
        else:
            warnings[key] = (
                f"base_path {path!r} is live on {holder!r}: publishing this draft is refused until it leaves",
            )
    return warnings

"""The rows the index takes and returns: frozen values, no SQL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One commit of an entity's draft branch: the activity log's unit."""

    key: str
    version: int
    commit: str
    action: str
    author_name: str
    author_email: str
    at: int  # unix seconds


@dataclass(frozen=True, slots=True)
class PublishRow:
    """One publish operation (a commit on main) and what it moved: (key, commit, version, deleted)."""

    commit: str
    author_name: str
    author_email: str
    at: int
    items: tuple[tuple[str, str, int, bool], ...]
    summary: str = ""
    update_type: str | None = None  # GOV.UK's major | minor | republish, if the publisher said
    change_note: str | None = None


@dataclass(frozen=True, slots=True)
class DraftRow:
    key: str
    type: str
    locale: str
    commit: str
    tree: str
    base_path: str | None
    deleted: bool
    version: int
    members: tuple[tuple[str, str | None], ...] | None = None  # (key, pin) rows if a container (Member fits)
    title: str = ""
    content_id: str = ""
    links: dict[str, list[str]] | None = None
    unpublishing: str | None = None


@dataclass(frozen=True, slots=True)
class PublishedRow:
    key: str
    commit: str
    tree: str
    base_path: str | None
    type: str
    locale: str
    live: bool
    members: tuple[tuple[str, str | None], ...] | None = None
    title: str = ""
    content_id: str = ""
    links: dict[str, list[str]] | None = None
    unpublishing: str | None = None


@dataclass(frozen=True, slots=True)
class EntityState:
    """Where an entity's draft and live versions are, as far as the index knows."""

    draft_commit: str
    draft_tree: str
    draft_deleted: bool
    published_commit: str | None  # may be a published delete
    live_tree: str | None  # None unless something is live


@dataclass(frozen=True, slots=True)
class Usage:
    """One place an entity is a member: `container`'s manifest in `view` ("draft" or "live")."""

    container: str
    view: str
    pinned: bool


@dataclass(frozen=True, slots=True)
class Summary:
    """What a link shows of its target in one view (GOV.UK's expanded-link projection)."""

    key: str
    type: str
    title: str
    base_path: str | None
    locale: str
    content_id: str
    unpublishing: str | None  # gone | redirect | vanish | withdrawn, or None


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One event of the feed: `stream` is "draft" or "main"; (depth, position) orders it there."""

    stream: str
    depth: int
    position: int
    anchor: int  # draft events: their depth; publish events: the depth of the drafts they saw
    at: int
    kind: str
    key: str
    commit: str
    action: str
    author_name: str
    author_email: str
    update_type: str | None = None  # a publish event's: from its commit on main
    change_note: str | None = None


@dataclass(frozen=True, slots=True)
class ListFilter:
    state: str = "draft"  # "draft" or "published"
    type: str | None = None
    locale: str | None = None
    has_unpublished_changes: bool | None = None
    # Drafts only: the deleted drafts instead of the others.
    deleted: bool = False
    # Case-insensitive part of the title in the listed state.
    title: str | None = None
    # Drafts only: entities this author (e-mail address or name) ever changed.
    author: str | None = None

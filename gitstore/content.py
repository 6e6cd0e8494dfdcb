"""The one door for changing content: every draft write, publish and unpublish, each once.

Each operation takes its arguments by name, runs every layer's rules and publish parts, holds
each lock it needs once (`unit_of_work`: the publish lock, then the drafts lock, each rolled
forward once) and tells the repository's after-publish listeners once it has let them go.
The API, the CLI, the samples, imports and the benches change content only through here.

    put_draft / patch_draft / delete_entity / discard_draft / restore_version / write_from_base
        one entity's draft, through the group commit (gitstore.entities.rounds)
    write_drafts        several entities' drafts in one atomic batch (an import)
    publish / publish_all_drafts / unpublish / republish
        make drafts live, or take live content down and put it back up
    set_container_type / set_link_type
        the rules of a repository's container and link types

What every write checks and records is `RULES` (gitstore.entities.rules): seed 002's slots,
containers' manifests and links' targets. What every publish adds is `PARTS`
(gitstore.publishing.parts): the members a container brings along and the dependents a
renderer must re-present. Both are built here, once, in the order they run; ADR 0013 says how
to add one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from gitstore.containers import api as containers
from gitstore.containers.api import (
    ContainerType,
    Manifests,
    MembersAlong,
    delete_leaving_containers,
    refuse_breaking_rules,
)
from gitstore.entities.api import (
    Author,
    Content,
    Document,
    DraftChange,
    DraftRules,
    IfMatch,
    Precondition,
    WriteResult,
    after_release,
    holding,
    roll_forward_drafts,
    write_document,
    write_entity_drafts,
    write_merge_patch,
    write_old_version,
    write_published_back,
)
from gitstore.history.api import write_merged
from gitstore.links import api as links
from gitstore.links.api import Dependents, Links, LinkType
from gitstore.names import validate_key
from gitstore.publishing.api import (
    DraftSlots,
    PublishNote,
    PublishParts,
    PublishRecord,
    PublishRequest,
    PublishTarget,
    publish_queued,
    put_back_up,
    roll_forward,
    take_down,
)
from gitstore.repository import ContentRepository
from gitstore.storage.api import refusing_when_fenced

__all__ = [
    "PARTS",
    "RULES",
    "delete_entity",
    "discard_draft",
    "patch_draft",
    "publish",
    "publish_all_drafts",
    "put_draft",
    "republish",
    "restore_version",
    "set_container_type",
    "set_link_type",
    "unit_of_work",
    "unpublish",
    "write_drafts",
    "write_from_base",
]

log = logging.getLogger("gitstore")

#: Every draft write's rules, in the order they run: checks first (containers' manifests, then
#: links), then the slots a change claims.
RULES = DraftRules(DraftSlots(), Manifests(), Links())

#: Every publish's parts, in the order they run: what containers bring along is expanded before
#: links work out what the publish makes a renderer re-present.
PARTS = PublishParts(MembersAlong(), Dependents())


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _door(
    operation: Callable[Concatenate[ContentRepository, _P], _R],
) -> Callable[Concatenate[ContentRepository, _P], _R]:
    """Every operation here: one that fails because its repository was taken from this node
    meanwhile (a move, a promotion) raises the fence's refusal (NotOwner: retry where it lives
    now), not the symptoms of its files going away."""

    @functools.wraps(operation)
    def door(repo: ContentRepository, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with refusing_when_fenced(repo.path):
            return operation(repo, *args, **kwargs)

    return door


@contextmanager
def unit_of_work(repo: ContentRepository, *, publish: bool) -> Iterator[None]:
    """Hold `repo`'s publish lock (when `publish`), then its drafts lock, each rolled forward:
    the content operations run inside take neither lock again nor roll forward again, and
    after-publish listeners hear of their publishes once the block lets the locks go."""
    with ExitStack() as held:
        if publish:
            held.enter_context(holding(repo, "publish", roll_forward))
        held.enter_context(holding(repo, "drafts", roll_forward_drafts))
        yield


# -- draft writes -----------------------------------------------------------------------------


@_door
def put_draft(
    repo: ContentRepository,
    key: str,
    document: Content | Document | dict[str, Any],
    *,
    author: Author,
    expected: Precondition = None,
) -> WriteResult:
    """Create the entity or replace its draft with `document`."""
    return write_document(repo, key, document, rules=RULES, author=author, expected=expected)


@_door
def patch_draft(
    repo: ContentRepository, key: str, patch: dict[str, Any], *, author: Author, expected: Precondition = None
) -> WriteResult:
    """Apply a JSON Merge Patch (RFC 7396) to the current draft."""
    return write_merge_patch(repo, key, patch, rules=RULES, author=author, expected=expected)


@_door
def delete_entity(repo: ContentRepository, key: str, *, author: Author, expected: Precondition = None) -> WriteResult:
    """Soft delete: a tombstone commit, which also takes the entity out of every container's
    draft in the same batch. Gone from draft views; live until the delete is published. Links
    to it stay as written; expansion leaves it out once the delete is live."""
    return delete_leaving_containers(repo, key, rules=RULES, author=author, expected=expected)


@_door
def discard_draft(repo: ContentRepository, key: str, *, author: Author, expected: Precondition = None) -> WriteResult:
    """Put the published content back on the draft branch as a new commit (the discarded work
    stays in history, so it can be restored later)."""
    return write_published_back(repo, key, rules=RULES, author=author, expected=expected)


@_door
def restore_version(
    repo: ContentRepository,
    key: str,
    version: int | None = None,
    *,
    commit: str | None = None,
    author: Author,
    expected: Precondition = None,
) -> WriteResult:
    """A new draft commit with the content of an older version, named by number or commit
    (seed 003's "undo"; rollback never rewinds)."""
    return write_old_version(repo, key, version, commit=commit, rules=RULES, author=author, expected=expected)


@_door
def write_from_base(
    repo: ContentRepository,
    key: str,
    base: str,
    *,
    author: Author,
    document: dict[str, Any] | None = None,
    patch: dict[str, Any] | None = None,
) -> WriteResult:
    """Apply a change the client made on top of `base` (an older version) to the current draft:
    disjoint changes merge, overlapping ones raise MergeConflict and nothing is written."""
    return write_merged(repo, key, base, rules=RULES, author=author, document=document, patch=patch)


@_door
def write_drafts(
    repo: ContentRepository, changes: Sequence[DraftChange], *, author: Author, summary: str
) -> list[WriteResult]:
    """Change several entities' drafts in one atomic batch: all of them or none. The batch
    records every rule's trailers and claims; its caller checks its content as a whole
    (gitstore.bundles), since its changes may name one another."""
    return write_entity_drafts(repo, changes, rules=RULES, author=author, summary=summary)


# -- publishing -------------------------------------------------------------------------------


@_door
def publish(
    repo: ContentRepository, targets: Sequence[PublishTarget], *, author: Author, note: PublishNote | None = None
) -> PublishRecord:
    """Publish `targets` and everything they bring with them (PARTS) in one atomic publish.

    Raises what gitstore.publishing.api.publish_targets raises, and Conflict for a cycle in the
    live tree it would make (possible only when publishing an old container version).
    """
    for target in targets:
        validate_key(target.key)
    return _publish(repo, lambda: list(targets), author=author, note=note)


@_door
def publish_all_drafts(repo: ContentRepository, *, author: Author, note: PublishNote | None = None) -> PublishRecord:
    """Publish every entity whose draft differs from what is live, atomically."""
    return _publish(
        repo,
        lambda: [PublishTarget(k) for k in repo.index.unpublished_keys()],
        author=author,
        note=note,
        every_draft=True,
    )


def _publish(
    repo: ContentRepository,
    chosen: Callable[[], list[PublishTarget]],
    *,
    author: Author,
    note: PublishNote | None,
    every_draft: bool = False,
) -> PublishRecord:
    # Publishes queued for the publish lock land together (gitstore.publishing.rounds); the
    # parts run for each: `before` and `expand` under the locks, `after` once it is live.
    request = PublishRequest(chosen, author, note or PublishNote(), every_draft)
    record = publish_queued(repo, request, PARTS)
    _published(repo, record)
    return record


@_door
def unpublish(
    repo: ContentRepository,
    key: str,
    kind: str,
    *,
    author: Author,
    explanation: str | None = None,
    alternative_path: str | None = None,
    discard_draft: bool = False,
    expected: IfMatch | None = None,
    note: PublishNote | None = None,
) -> PublishRecord:
    """Take `key`'s live version down as `gone`, `vanish`, `redirect` or `withdrawn`
    (gitstore.publishing.unpublishing), and say which pages showed it. The request is checked
    before any lock is taken."""
    remembered = PARTS.before(repo, [])
    record = take_down(
        repo,
        key,
        kind,
        rules=RULES,
        author=author,
        explanation=explanation,
        alternative_path=alternative_path,
        discard_draft=discard_draft,
        expected=expected,
        note=note,
        describe=PARTS.describer(repo),
    )
    record = PARTS.after(repo, record, remembered)
    _published(repo, record)
    return record


@_door
def republish(repo: ContentRepository, key: str, *, author: Author, expected: IfMatch | None = None) -> PublishRecord:
    """Reverse an unpublishing: the live content, without the notice, live again."""
    remembered = PARTS.before(repo, [])
    record = put_back_up(repo, key, rules=RULES, author=author, expected=expected, describe=PARTS.describer(repo))
    record = PARTS.after(repo, record, remembered)
    _published(repo, record)
    return record


def _published(repo: ContentRepository, record: PublishRecord) -> None:
    """Tell the repository's after-publish listeners, once no lock of it is held here."""
    if record.commit is None or not repo.after_publish:
        return

    def tell() -> None:
        for listener in list(repo.after_publish):
            try:
                listener(repo)
            except Exception:  # the publish is made; a listener's failure is its own
                log.exception("an after-publish listener failed for %s", repo.name)

    after_release(repo, tell)


# -- type rules -------------------------------------------------------------------------------


@_door
def set_container_type(
    repo: ContentRepository, name: str, allowed_member_types: list[str] | None, *, author: Author
) -> ContainerType:
    """Override the rules for container type `name`; refused (Conflict naming them) if
    existing containers would break them."""
    return containers.set_container_type(
        repo, name, allowed_member_types, author=author, check=lambda kind: refuse_breaking_rules(repo, kind)
    )


@_door
def set_link_type(
    repo: ContentRepository, name: str, *, reverse: str | None, breadcrumbs: bool, author: Author
) -> LinkType:
    """Give link type `name` a reverse name and breadcrumb behaviour."""
    return links.set_link_type(repo, name, reverse=reverse, breadcrumbs=breadcrumbs, author=author)

"""Reading entities: any view of one, listings from the index, and a branch's versions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from gitstore.entities.document import (
    document_id,
)
from gitstore.entities.model import Author, Entity, Page, VersionInfo
from gitstore.entities.preconditions import SHA
from gitstore.entities.snapshots import (
    Snapshot,
    commit_time,
    draft_tip,
    load_snapshot,
    published_commit,
)
from gitstore.entities.trailers import parse_trailers, summary_of
from gitstore.errors import (
    CorruptObject,
    EntityNotFound,
    InvalidInput,
    StaleVersion,
    VersionNotFound,
)
from gitstore.index.api import ListFilter
from gitstore.names import validate_key
from gitstore.repository import ContentRepository
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    commit_id,
    commit_tree,
    first_parent,
    first_parent_commits,
    is_ancestor,
    is_commit,
    object_errors,
)

# -- reads ------------------------------------------------------------------------------------


def get_entity(
    repo: ContentRepository,
    key: str,
    *,
    state: str = "published",
    version: int | None = None,
    commit: str | None = None,
) -> Entity:
    """One view of an entity: "published" (what is live), "draft", or a past version.

    Raises:
        EntityNotFound: nothing in that view (never published, deleted, unknown key).
        VersionNotFound: no such version or commit on this entity's draft branch.
    """
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    published = published_commit(repo, key)
    if version is not None or commit is not None:
        oid = find_version(repo, key, tip, version=version, commit=commit)
        snap = load_snapshot(git, oid)
        label = "published" if oid == published else "draft" if oid == tip else "superseded"
        return entity_view(git, snap, label, tip, published)
    if state == "draft":
        snap = load_snapshot(git, tip)
        if snap.deleted:
            raise EntityNotFound(f"{key!r} is deleted in draft; it stays live until the delete is published", key=key)
        return entity_view(git, snap, "draft", tip, published)
    if published is None:
        raise EntityNotFound(f"{key!r} has never been published", key=key)
    snap = load_snapshot(git, published)
    if snap.deleted:
        raise EntityNotFound(f"{key!r} was deleted and the delete is published", key=key)
    return entity_view(git, snap, "published", tip, published)


def list_entities(repo: ContentRepository, where: ListFilter, *, cursor: str | None = None, limit: int = 50) -> Page:
    """Entities matching `where`, by key, from the index (never by scanning refs)."""
    if cursor is not None:
        validate_key(cursor, loc=("cursor",))
    keys = repo.index.list_keys(where, after=cursor, limit=limit + 1)
    read = partial(_deleted_draft, repo) if where.deleted else partial(get_entity, repo, state=where.state)
    items, damaged = read_each(keys[:limit], read)
    return Page(items=items, next_cursor=keys[limit - 1] if len(keys) > limit else None, damaged=damaged)


def _deleted_draft(repo: ContentRepository, key: str) -> Entity:
    """A deleted draft as it stands: the tombstone's content, which `get_entity` will not show."""
    git = repo.storage.git
    tip = draft_tip(repo, key)
    snap = load_snapshot(git, tip)
    if not snap.deleted:
        raise EntityNotFound(f"{key!r} is not deleted in draft", key=key)  # restored since the index answered
    return entity_view(git, snap, "draft", tip, published_commit(repo, key))


def read_each(keys: Sequence[str], read: Callable[[str], Entity]) -> tuple[list[Entity], list[str]]:
    """`read` of each key, for a listing: the entities, and the keys whose stored content is
    damaged. One damaged entity must not take the whole page down with it; its own URL still
    answers the corrupt-object problem, and the page says which keys it left out."""
    items, damaged = [], []
    for key in keys:
        try:
            with object_errors():
                items.append(read(key))
        except EntityNotFound:
            continue  # index lagging a concurrent delete; the next read will agree
        except CorruptObject:
            damaged.append(key)  # logged, with the object, where it was found
    return items, damaged


def require_exists(repo: ContentRepository, key: str) -> None:
    """`IfExists` for operations on live content, which act on a draft branch whatever its
    tip: StaleVersion unless `key` has one."""
    validate_key(key)
    try:
        draft_tip(repo, key)
    except EntityNotFound:
        raise StaleVersion(f"{key!r} does not exist", current=None) from None


def ever_published(repo: ContentRepository, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that were live at some point (live now, or their delete is published),
    from the index: everything a reader of the live site can know exists."""
    return {key for key, state in repo.index.states(keys).items() if state.published_commit is not None}


def list_versions(repo: ContentRepository, key: str, *, cursor: int | None = None, limit: int = 50) -> Page:
    """The draft branch's commits, newest first. `cursor` is the version to start from."""
    validate_key(key)
    git = repo.storage.git
    tip = draft_tip(repo, key)
    start = tip if cursor is None else find_version(repo, key, tip, version=cursor, commit=None)
    published = published_commit(repo, key)
    went_live = repo.index.publish_times(key)
    items: list[VersionInfo] = []
    older: CommitId | None = start
    # History lists read commits only, never the entity's files.
    for commit in first_parent_commits(git, start if limit > 0 else None):
        oid = commit.id
        trailers = parse_trailers(commit.message)
        items.append(
            VersionInfo(
                version=int(trailers.get("Version", "0")),
                edition=int(trailers.get("Edition", "0")),
                commit=str(oid),
                action=trailers.get("Action", ""),
                message=summary_of(commit.message),
                author=Author(commit.author.name, commit.author.email),
                committed_at=commit_time(commit.author),
                live=oid == published,
                published_at=datetime.fromtimestamp(went_live[str(oid)], UTC) if str(oid) in went_live else None,
            )
        )
        older = commit.first_parent
        if len(items) == limit:
            break
    next_cursor = str(items[-1].version - 1) if older is not None and items else None
    return Page(items=items, next_cursor=next_cursor)


def find_version(
    repo: ContentRepository, key: str, tip: CommitId, *, version: int | None, commit: str | None
) -> CommitId:
    git = repo.storage.git
    if commit is not None:
        if not SHA.fullmatch(commit):
            raise InvalidInput(
                "commit must be a full commit id: 40 lower-case hex digits",
                errors=[{"loc": ["commit"], "msg": "not a 40-hex commit id"}],
            )
        named = commit_id(commit)
        if named == tip or (is_commit(git, named) and is_ancestor(git, named, tip)):
            return named
        raise VersionNotFound(f"{commit} is not a version of {key!r}", key=key)
    if version is None:
        raise InvalidInput("name a version or a commit", errors=[{"loc": ["version"], "msg": "missing"}])
    if version < 1:
        raise VersionNotFound(f"{key!r} has no version {version}", key=key)
    sha = repo.index.commit_of_version(key, version)
    if sha is not None:
        return commit_id(sha)
    # The index lags (a crash, or a reindex in progress): walk back from the tip.
    oid: CommitId | None = tip
    while oid is not None:
        snap = load_snapshot(git, oid)
        if snap.version == version:
            return oid
        if snap.version < version:
            break
        oid = first_parent(git, oid)
    raise VersionNotFound(f"{key!r} has no version {version}", key=key)


def entity_view(
    git: GitHandle,
    snap: Snapshot,
    state: str,
    tip: CommitId | None,
    published: CommitId | None,
) -> Entity:
    if published is not None:
        unpublished = tip is not None and commit_tree(git, published) != commit_tree(git, tip)
    else:
        # Never live: there is something to publish unless the draft is a tombstone.
        tip_deleted = snap.deleted if tip == snap.commit else tip is None or load_snapshot(git, tip).deleted
        unpublished = not tip_deleted
    doc = snap.document
    return Entity(
        key=snap.key,
        type=doc.type,
        title=doc.title,
        locale=doc.locale,
        content_id=document_id(snap.key, doc),
        base_path=doc.base_path,
        fields=doc.fields,
        links=doc.links,
        members=doc.members,
        version=snap.version,
        edition=snap.edition,
        commit=str(snap.commit),
        state=state,
        published_commit=str(published) if published is not None else None,
        has_unpublished_changes=unpublished,
        deleted=snap.deleted,
        author=snap.author,
        updated_at=snap.at,
        unpublishing=doc.unpublishing,
    )

"""Publishing: make drafts live, one entity or many, all at once or not at all.

One ref is the commit point: `refs/heads/main`. A publish writes one commit there whose tree
holds every live entity and whose message lists what moved (`Gitstore-Published: key sha`).
Only after that compare-and-swap succeeds are the derived pieces moved: `refs/published/<key>`
and the index. A crash in between leaves `main` ahead of them; `roll_forward` (run at startup
and before every publish) finishes the job, and readers consult main's newest entry first
(gitstore.entities.snapshots), so nobody sees half a publish. libgit2's multi-ref transaction
is not crash-atomic (measured: kill -9 left partial state 40 times out of 40), which is why
it is not the commit point.

Publishes serialise on the repository's publish lock; they never rewind a published ref.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pygit2

from gitstore.entities.api import IfMatch
from gitstore.entities.document import document_id
from gitstore.entities.model import Author
from gitstore.entities.snapshots import (
    Snapshot,
    commit_time,
    draft_tip,
    load_snapshot,
    newest_publish,
    published_commit,
)
from gitstore.entities.trailers import format_message, parse_repeated
from gitstore.errors import (
    BasePathTaken,
    NotFastForward,
    StaleVersion,
    VersionNotFound,
)
from gitstore.index.api import PublishedRow, PublishRow
from gitstore.names import validate_key
from gitstore.repository import MAIN, ContentRepository, published_ref
from gitstore.storage.api import (
    commit_on_ref,
    disk_errors,
    read_ref,
    update_aggregate,
    update_refs,
)

__all__ = [
    "PublishRecord",
    "PublishTarget",
    "PublishedItem",
    "publish",
    "publish_all_drafts",
    "publish_row",
    "published_row",
    "roll_forward",
]


@dataclass(frozen=True, slots=True)
class PublishTarget:
    """What to publish of one entity: its draft tip, or an older `version` (or `commit`) of its
    branch (only if that is a fast-forward), optionally only if the tip is `expected`."""

    key: str
    version: int | None = None
    expected: IfMatch | None = None
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class PublishedItem:
    key: str
    commit: str
    version: int
    edition: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One publish operation: its commit on `main` (None if nothing needed publishing)."""

    commit: str | None
    author: Author
    published_at: datetime | None
    items: list[PublishedItem]


def publish(repo: ContentRepository, targets: Sequence[PublishTarget], *, author: Author) -> PublishRecord:
    """Publish every target in one atomic operation.

    Raises:
        EntityNotFound: a key has no draft branch.
        StaleVersion: a target's draft tip is not its `expected` commit.
        VersionNotFound: a target names a version its branch does not have.
        NotFastForward: a target would move a published ref backwards.
        BasePathTaken: a target's base_path is live on another entity, or two targets share one.
    """
    for target in targets:
        validate_key(target.key)
    with repo.storage.publish_lock.held(), disk_errors():
        roll_forward(repo)
        plan = _plan(repo, targets)
        if not plan:
            return PublishRecord(None, author, None, [])
        _check_live_paths(repo, plan)
        git = repo.storage.git
        main = read_ref(git, MAIN)
        root = git[main].tree if main is not None else None
        tree = update_aggregate(git, root, {k: None if s.deleted else s.tree for k, s in plan.items()})
        sig = pygit2.Signature(author.name, author.email)
        commit = commit_on_ref(git, MAIN, expected=main, author=sig, message=_message(plan), tree=tree)
        _apply(repo, commit)
    items = [PublishedItem(k, str(s.commit), s.version, s.edition, s.deleted) for k, s in sorted(plan.items())]
    return PublishRecord(str(commit), author, commit_time(sig), items)


def publish_all_drafts(repo: ContentRepository, *, author: Author) -> PublishRecord:
    """Publish every entity whose draft differs from what is live, atomically."""
    with repo.storage.publish_lock.held():
        roll_forward(repo)
        keys = repo.index.unpublished_keys()
        return publish(repo, [PublishTarget(k) for k in keys], author=author)


def roll_forward(repo: ContentRepository) -> bool:
    """Make `refs/published/*` and the index agree with `main`. Idempotent; True if it did work."""
    git = repo.storage.git
    main = read_ref(git, MAIN)
    if main is None or repo.index.meta("main_head") == str(main):
        return False
    with repo.storage.publish_lock.held():
        _apply(repo, main)
    return True


def _plan(repo: ContentRepository, targets: Iterable[PublishTarget]) -> dict[str, Snapshot]:
    git = repo.storage.git
    plan: dict[str, Snapshot] = {}
    for target in targets:
        key = target.key
        tip = draft_tip(repo, key)
        if target.expected is not None and str(tip) != target.expected.commit:
            raise StaleVersion(f"the draft of {key!r} is not at {target.expected.commit}", current=str(tip))
        if target.commit is not None:
            chosen = pygit2.Oid(hex=target.commit)
            if chosen != tip and not (chosen in git and git.descendant_of(tip, chosen)):
                raise VersionNotFound(f"{target.commit} is not a version of {key!r}", key=key)
        elif target.version is not None:
            chosen = _commit_of_version(repo, key, target.version)
        else:
            chosen = tip
        live = published_commit(repo, key)
        if live == chosen:
            continue
        if live is not None and not git.descendant_of(chosen, live):
            raise NotFastForward(
                f"publishing {key!r} at that version would move what is live backwards; "
                "restore the old version as a new draft and publish that instead",
                key=key,
            )
        snap = load_snapshot(git, chosen)
        if live is None and snap.deleted:
            continue  # deleted before it was ever live: nothing to take down
        plan[key] = snap
    return plan


def _commit_of_version(repo: ContentRepository, key: str, version: int) -> pygit2.Oid:
    sha = repo.index.commit_of_version(key, version)
    if sha is None:
        raise VersionNotFound(f"{key!r} has no version {version}", key=key)
    return pygit2.Oid(hex=sha)


def _check_live_paths(repo: ContentRepository, plan: dict[str, Snapshot]) -> None:
    claims: dict[str, str] = {}
    for key, snap in sorted(plan.items()):
        path = snap.document.base_path
        if path is None or snap.deleted:
            continue
        if path in claims:
            raise BasePathTaken(
                f"{key!r} and {claims[path]!r} would both be live at {path!r}",
                holder=claims[path],
                base_path=path,
            )
        claims[path] = key
    for path, holder in repo.index.live_holders(list(claims)).items():
        if holder == claims[path]:
            continue
        moving = plan.get(holder)
        if moving is not None and (moving.deleted or moving.document.base_path != path):
            continue  # the holder leaves that path in this same publish
        raise BasePathTaken(f"base_path {path!r} is live on {holder!r}", holder=holder, base_path=path)


def _message(plan: dict[str, Snapshot]) -> str:
    keys = sorted(plan)
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    summary = f"Publish {shown}" if len(keys) > 1 else f"Publish {keys[0]} version {plan[keys[0]].version}"
    return format_message(summary, [("Published", f"{k} {plan[k].commit}") for k in keys])


def _apply(repo: ContentRepository, main: pygit2.Oid) -> None:
    """Move the derived refs and index to what publish commit `main` says. Idempotent."""
    git = repo.storage.git
    moved = {key: pygit2.Oid(hex=sha) for key, sha in newest_publish(repo, main).items()}
    update_refs(git, {published_ref(k): oid for k, oid in moved.items()})
    rows = [published_row(git, key, oid) for key, oid in moved.items()]
    repo.index.record_published(rows, main_head=str(main), publishes=[publish_row(git, main)])


def published_row(git: pygit2.Repository, key: str, commit: pygit2.Oid) -> PublishedRow:
    """What the index records when commit `commit` of `key` goes live."""
    snap = load_snapshot(git, commit)
    doc = snap.document
    return PublishedRow(
        key,
        str(commit),
        str(snap.tree),
        doc.base_path,
        doc.type,
        doc.locale,
        not snap.deleted,
        doc.members,
        doc.title,
        document_id(key, doc),
        doc.links,
        doc.unpublishing.type if doc.unpublishing else None,
    )


def publish_row(git: pygit2.Repository, main: pygit2.Oid) -> PublishRow:
    """The publish log entry that commit `main` records."""
    commit = git[main]
    items = []
    for entry in parse_repeated(commit.message, "Published"):
        key, sha = entry.split(" ", 1)
        snap = load_snapshot(git, pygit2.Oid(hex=sha))
        items.append((key, sha, snap.version, snap.deleted))
    return PublishRow(str(main), commit.author.name, commit.author.email, commit.author.time, tuple(items))

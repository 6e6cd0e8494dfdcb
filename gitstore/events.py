"""The event feed: what happened to a repository's content, in order, resumable by cursor.

Events are read off git history, not written beside it, so nothing can happen between a
commit and its event: a change *is* its event. Two branches record everything, each appended
to under its own lock (and each publish names the `draft` commit it saw, which places it
exactly among the draft changes):

    refs/heads/draft   one commit per draft change or batch    -> draft_changed, deleted, discarded
    refs/heads/main    one commit per publish                  -> published, unpublished, deleted

The index keeps a table of the events read so far (gitstore.index), filled in on demand from
where it stopped; rebuilt from scratch it gives the same rows, so a cursor stays valid across
restarts and reindexes. A cursor is a position in each of the two histories, so resuming
never skips or repeats an event even when the two branches grow at different speeds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gitstore.entities.api import folded_draft_head, load_snapshot, parse_repeated, parse_trailers
from gitstore.errors import InvalidInput, StorageFull
from gitstore.index.api import EntityIndex, FeedRow
from gitstore.publishing.api import PublishNote
from gitstore.repository import DRAFT, MAIN, ContentRepository
from gitstore.storage.api import (
    CommitId,
    CommitRecord,
    GitHandle,
    Signature,
    commit_id,
    commit_message,
    find_commit,
    first_parent,
    has_object,
    in_order,
    read_commit,
    read_ref,
)

__all__ = ["Cursor", "Event", "EventPage", "heads", "read_events"]

log = logging.getLogger("gitstore.events")

_DRAFT_KINDS = {"delete": "deleted", "discard": "discarded"}  # any other action: draft_changed


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in both histories: (depth, position) of the last event consumed in each."""

    draft: tuple[int, int] = (0, 0)
    main: tuple[int, int] = (0, 0)

    def __str__(self) -> str:
        return f"{self.draft[0]}.{self.draft[1]}.{self.main[0]}.{self.main[1]}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts):
            raise InvalidInput(
                "a cursor is the id of an event, or 'latest'", errors=[{"loc": ["after"], "msg": "not a cursor"}]
            )
        d1, d2, m1, m2 = (int(p) for p in parts)
        return cls((d1, d2), (m1, m2))


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # the cursor that resumes right after this event
    kind: str  # draft_changed | published | unpublished | deleted | discarded
    view: str  # "draft" (a change to drafts) or "live" (a publish)
    key: str
    commit: str  # the entity's commit
    action: str  # the commit's Gitstore-Action: create, update, restore, unpublish, ...
    author_name: str
    author_email: str
    at: datetime
    dependents: list[str] = field(default_factory=list)
    # A publish event's: GOV.UK's update_type (a message queue routes on it) and change note.
    update_type: str | None = None
    change_note: str | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[Event]
    cursor: str  # resume from here (the last item's id, or the cursor asked for)


def heads(repo: ContentRepository) -> tuple[str | None, str | None, int | None]:
    """The tips of `draft` and `main`, and the newest change not yet folded into `draft`:
    cheap to poll (nothing is written), and one of them changes whenever an event happens."""
    git = repo.storage.git
    draft, main = (str(o) if o is not None else None for o in (read_ref(git, DRAFT), read_ref(git, MAIN)))
    return draft, main, repo.index.unfolded_mark()


def read_events(
    repo: ContentRepository,
    *,
    after: str | None = None,
    limit: int = 100,
    drafts: bool = True,
    with_dependents: bool = True,
) -> EventPage:
    """Events after cursor `after` (from the beginning if None, from now if "latest"), oldest
    first. Without `drafts`, only what happened to the live site (a reader's view)."""
    # A publish names the `draft` commit it saw and moves `main`, both under the drafts lock:
    # the two heads read under it too are one moment, so every publish in `main` named a
    # `draft` commit read here, and every later one will name this one or a later one. Read
    # apart, a publish and a fold could land between the two reads, and a change handed out
    # now would be placed after a publish in every later read, under other ids. A live reader
    # sees no draft event, so its ids do not depend on `draft`.
    # (Without the lock, `main` is read first: `draft` must be read at least as far as the
    # commits its publishes name, or their place would be guessed from commit times.)
    with in_order(repo.storage, "drafts") if drafts else contextlib.nullcontext():
        main_head = read_ref(repo.storage.git, MAIN)
        drafts_head = folded_draft_head(repo)  # folded: the feed hands out every acknowledged change
    feed = _Feed(repo.index)
    _catch_up(repo, feed, "draft", drafts_head)
    _catch_up(repo, feed, "main", main_head)
    if after == "latest":
        # A reader's cursor stays at the start of `draft`: how far it has grown is draft news.
        cursor = Cursor(feed.end("draft") if drafts else (0, 0), feed.end("main"))
        return EventPage([], str(cursor))
    cursor = Cursor() if after is None else Cursor.parse(after)
    draft_rows = feed.after("draft", *cursor.draft, limit) if drafts else []
    main_rows = feed.after("main", *cursor.main, limit)
    items = []
    rows = list(_merged(draft_rows, main_rows, limit))
    recorded = {
        stream: _recorded(repo, feed, stream, {r.depth for r in rows if r.stream == stream}) if with_dependents else {}
        for stream in ("draft", "main")
    }
    for row in rows:
        if row.stream == "draft":
            cursor = Cursor((row.depth, row.position), cursor.main)
        else:
            cursor = Cursor(cursor.draft, (row.depth, row.position))
        items.append(_event(repo, row, str(cursor), with_dependents, recorded))
    return EventPage(items, str(cursor))


def _recorded(repo: ContentRepository, feed: _Feed, stream: str, depths: set[int]) -> dict[int, dict[str, list[str]]]:
    """For each commit of `stream` (by depth), the dependents it recorded of each entity it
    changed or moved (`Gitstore-Dependents: key dependent ...`, ADR 0011). A commit made before
    they were recorded names none: what they are today is not what they were then."""
    git = repo.storage.git
    found: dict[int, dict[str, list[str]]] = {}
    for depth, sha in feed.commits_at(stream, sorted(depths)).items():
        entries = (line.split(" ") for line in parse_repeated(commit_message(git, commit_id(sha)), "Dependents"))
        found[depth] = {key: deps for key, *deps in entries}
    return found


def _merged(draft: list[FeedRow], main: list[FeedRow], limit: int) -> Iterator[FeedRow]:
    """Both streams in the order things happened: a publish right after the last draft
    change it saw (its anchor), before any later one. Each stream keeps its own order."""
    i = j = 0
    while i + j < limit and (i < len(draft) or j < len(main)):
        if j >= len(main) or (i < len(draft) and draft[i].depth <= main[j].anchor):
            yield draft[i]
            i += 1
        else:
            yield main[j]
            j += 1


def _event(
    repo: ContentRepository,
    row: FeedRow,
    cursor: str,
    with_dependents: bool,
    recorded: dict[str, dict[int, dict[str, list[str]]]],
) -> Event:
    view = "draft" if row.stream == "draft" else "live"
    found = recorded[row.stream].get(row.depth, {}).get(row.key, []) if with_dependents else []
    return Event(
        id=cursor,
        kind=row.kind,
        view=view,
        key=row.key,
        commit=row.commit,
        action=row.action,
        author_name=row.author_name,
        author_email=row.author_email,
        at=datetime.fromtimestamp(row.at, UTC),
        dependents=found,
        update_type=row.update_type,
        change_note=row.change_note,
    )


# -- reading history into the feed -------------------------------------------------------------


class _Feed:
    """The index's event feed, and what this read could not record in it.

    The feed is a cache of history, and a read must not fail because a cache cannot be written:
    on a full disk the rows read off history are kept here, for this read only, and served
    after the recorded ones. They are the very rows a later read records once there is room,
    so the cursors handed out meanwhile stay valid."""

    def __init__(self, index: EntityIndex) -> None:
        self._index = index
        self._commits: dict[str, dict[str, tuple[int, int]]] = {"draft": {}, "main": {}}  # sha: (depth, at)
        self._rows: dict[str, list[FeedRow]] = {"draft": [], "main": []}

    def depth(self, stream: str, commit: str) -> int | None:
        kept = self._commits[stream].get(commit)
        return kept[0] if kept is not None else self._index.feed_depth(stream, commit)

    def depth_at(self, stream: str, at: int) -> int:
        kept = [depth for depth, when in self._commits[stream].values() if when <= at]
        return max([self._index.feed_depth_at(stream, at), *kept])

    def commits_at(self, stream: str, depths: list[int]) -> dict[int, str]:
        kept = {depth: sha for sha, (depth, _) in self._commits[stream].items() if depth in depths}
        missing = [d for d in depths if d not in kept]
        return {**(self._index.feed_commits_at(stream, missing) if missing else {}), **kept}

    def has_rows(self, stream: str) -> bool:
        return bool(self._commits[stream]) or self._index.feed_tip(stream) is not None

    def knows(self, stream: str, commit: str) -> bool:
        return any(r.commit == commit for r in self._rows[stream]) or self._index.feed_knows(stream, commit)

    def append(self, stream: str, commits: list[tuple[int, str, int]], rows: list[FeedRow]) -> None:
        try:
            self._index.feed_append(stream, commits, rows)
        except StorageFull:
            log.warning("no room to record %d events of %s; serving them unrecorded", len(rows), stream)
            self._commits[stream].update((sha, (depth, at)) for depth, sha, at in commits)
            self._rows[stream] += rows

    def forget(self, stream: str) -> None:
        self._index.feed_forget(stream)

    def after(self, stream: str, depth: int, position: int, limit: int) -> list[FeedRow]:
        recorded = self._index.feed_after(stream, depth, position, limit)
        last = (recorded[-1].depth, recorded[-1].position) if recorded else (depth, position)
        return (recorded + [r for r in self._rows[stream] if (r.depth, r.position) > last])[:limit]

    def end(self, stream: str) -> tuple[int, int]:
        kept = self._rows[stream]
        return (kept[-1].depth, kept[-1].position) if kept else self._index.feed_end(stream)


def _catch_up(repo: ContentRepository, feed: _Feed, stream: str, head: CommitId | None) -> None:
    """Read the commits `stream` gained up to `head` since the feed last looked, oldest first."""
    git = repo.storage.git
    if head is None:
        return
    if feed.depth(stream, str(head)) is not None:
        return  # read already (perhaps further, by another reader)
    has_rows = feed.has_rows(stream)
    new: list[CommitRecord] = []
    oid: CommitId | None = head
    known: tuple[int, str] | None = None
    while oid is not None:
        depth_here = feed.depth(stream, str(oid)) if has_rows else None
        if depth_here is not None:
            known = (depth_here, str(oid))
            break
        commit = read_commit(git, oid)
        new.append(commit)
        oid = commit.first_parent
    if known is None and has_rows:
        # The branch no longer contains what the feed read (it never should: both branches
        # only grow). Start the stream again from its root rather than serve a wrong order.
        feed.forget(stream)
    depth = known[0] if known is not None else 0
    commits: list[tuple[int, str, int]] = []
    rows: list[FeedRow] = []
    announced: set[str] = set()  # entity commits named by this catch-up, not yet in the index
    for commit in reversed(new):
        depth += 1
        commits.append((depth, str(commit.id), commit.committer.time))
        note = PublishNote()
        if stream == "draft":
            raw = _draft_events(repo, commit, lambda sha: sha in announced or feed.knows("draft", sha))
            anchor = depth
        else:
            raw = _publish_events(repo, commit)
            anchor = _drafts_seen(feed, commit)
            note = PublishNote.of(commit.message)
        for position, (key, entity_commit, kind, action, author, at) in enumerate(raw, 1):
            announced.add(entity_commit)
            row = FeedRow(
                stream,
                depth,
                position,
                anchor,
                at,
                kind,
                key,
                entity_commit,
                action,
                author.name,
                author.email,
                note.update_type,
                note.change_note,
            )
            rows.append(row)
    feed.append(stream, commits, rows)


_Raw = tuple[str, str, str, str, Signature, int]


def _drafts_seen(feed: _Feed, publish: CommitRecord) -> int:
    """How far `draft` had got when `publish` was made: its `Gitstore-Drafts` trailer, read
    as a depth. (A publish made before that trailer existed falls back to commit times.)"""
    sha = parse_trailers(publish.message).get("Drafts")
    depth = feed.depth("draft", sha) if sha else None
    return depth if depth is not None else feed.depth_at("draft", publish.committer.time)


def _draft_events(repo: ContentRepository, commit: CommitRecord, known: Callable[[str], bool]) -> Iterator[_Raw]:
    git = repo.storage.git
    trailers = parse_trailers(commit.message)
    if "Commit" in trailers and "Key" in trailers:
        yield _draft_event(git, commit, trailers["Key"], commit_id(trailers["Commit"]))
        return
    for entry in parse_repeated(commit.message, "Batch"):
        key, sha = entry.split(" ", 1)
        yield _draft_event(git, commit, key, commit_id(sha))
    for entry in parse_repeated(commit.message, "Folded"):
        # Single changes, each already committed on its entity's ref, in the order they were
        # made; each is its own author's, at its own time.
        key, sha = entry.split(" ", 1)
        if not known(sha):
            yield _draft_event(git, commit, key, commit_id(sha), own_signature=True)
    for entry in parse_repeated(commit.message, "Repaired"):
        # A change whose commit on `draft` was lost to a crash: its entity ref is the commit
        # point, so the change happened. Announce every commit of it no event named yet.
        key, sha = entry.split(" ", 1)
        missed: list[CommitId] = []
        oid: CommitId | None = commit_id(sha)
        while oid is not None and has_object(git, oid) and not known(str(oid)) and len(missed) < 10_000:
            missed.append(oid)
            oid = first_parent(git, oid)
        for oid in reversed(missed):
            yield _draft_event(git, commit, key, oid)


def _draft_event(
    git: GitHandle, aggregate: CommitRecord, key: str, oid: CommitId, *, own_signature: bool = False
) -> _Raw:
    """One entity commit's event. The author and time are the `draft` commit's (the same
    signature), or with `own_signature` the entity commit's; the entity commit is read only if
    it is still there (pruning removes abandoned entities, and the feed must read the same
    history before and after)."""
    listed = parse_trailers(aggregate.message)
    action = listed.get("Action") if listed.get("Commit") == str(oid) else None
    entity = find_commit(git, oid) if action is None or own_signature else None
    if action is None:
        action = parse_trailers(entity.message).get("Action", "update") if entity is not None else "update"
    author = entity.author if own_signature and entity is not None else aggregate.author
    return key, str(oid), _DRAFT_KINDS.get(action, "draft_changed"), action, author, author.time


def _publish_events(repo: ContentRepository, commit: CommitRecord) -> Iterator[_Raw]:
    for entry in parse_repeated(commit.message, "Published"):
        key, sha = entry.split(" ", 1)
        snap = load_snapshot(repo.storage.git, commit_id(sha))
        if snap.deleted:
            kind = "deleted"
        elif snap.document.unpublishing is not None:
            kind = "unpublished"
        else:
            kind = "published"
        yield key, sha, kind, snap.action, commit.author, commit.author.time

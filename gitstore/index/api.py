"""The derived index: one SQLite file per repository that answers listings and lookups.

Git is the source of truth; everything here can be thrown away and rebuilt from refs
(`gitstore reindex`). It exists so that no request scans refs or walks history: listing with
filters, "who holds this base_path", "which commit is version N".

Writers update it while holding the repository lock that guards the refs they moved, right
after the ref moved, so it lags git by at most one crash. Startup repair closes that gap.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitstore.errors import StorageFull

__all__ = [
    "ChangeRow",
    "DraftRow",
    "EntityIndex",
    "EntityState",
    "FeedRow",
    "ListFilter",
    "PublishRow",
    "PublishedRow",
    "Summary",
    "Usage",
]

# SQLite's INTEGER range: a client's version number or cursor past it cannot match a row, and
# binding it would raise OverflowError.
_MAX_INTEGER = (1 << 63) - 1
# The columns of a Summary in each view, and the condition for being visible in it.
_SUMMARY = {
    "draft": ("key, type, title, draft_base_path, locale, content_id, unpublishing", "draft_deleted=0"),
    "live": (
        "key, published_type, published_title, published_base_path, published_locale, published_content_id, "
        "published_unpublishing",
        "published_live=1",
    ),
}
_DOCUMENT = {"draft": ("content_id", "locale"), "live": ("published_content_id", "published_locale")}

# Bump when the schema changes: an index with another version is dropped and rebuilt from git.
SCHEMA_VERSION = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    key                 TEXT PRIMARY KEY,
    type                TEXT NOT NULL,
    locale              TEXT NOT NULL,
    title               TEXT NOT NULL,
    content_id          TEXT NOT NULL,
    unpublishing        TEXT,           -- gone | redirect | vanish | withdrawn, if the draft says so
    draft_commit        TEXT NOT NULL,
    draft_tree          TEXT NOT NULL,
    draft_base_path     TEXT,
    draft_deleted       INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    published_commit    TEXT,
    published_tree      TEXT,
    published_base_path TEXT,
    published_type      TEXT,
    published_locale    TEXT,
    published_title     TEXT,
    published_content_id TEXT,
    published_unpublishing TEXT,
    published_live      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entities_document ON entities (content_id, locale) WHERE draft_deleted = 0;
CREATE INDEX IF NOT EXISTS entities_live_document ON entities (published_content_id, published_locale)
    WHERE published_live = 1;
CREATE INDEX IF NOT EXISTS entities_draft_path ON entities (draft_base_path)
    WHERE draft_base_path IS NOT NULL AND draft_deleted = 0;
CREATE INDEX IF NOT EXISTS entities_live_path ON entities (published_base_path)
    WHERE published_base_path IS NOT NULL AND published_live = 1;
CREATE TABLE IF NOT EXISTS changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT NOT NULL,
    version      INTEGER NOT NULL,
    commit_id    TEXT NOT NULL,
    action       TEXT NOT NULL,
    author_name  TEXT NOT NULL,
    author_email TEXT NOT NULL,
    at           INTEGER NOT NULL,
    UNIQUE (key, version)
);
CREATE INDEX IF NOT EXISTS changes_author ON changes (author_email, seq);
CREATE TABLE IF NOT EXISTS publishes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_id    TEXT NOT NULL UNIQUE,
    author_name  TEXT NOT NULL,
    author_email TEXT NOT NULL,
    at           INTEGER NOT NULL,
    summary      TEXT NOT NULL,  -- the first line of its commit on main
    update_type  TEXT,           -- major | minor | republish, if the publisher said
    change_note  TEXT
);
CREATE INDEX IF NOT EXISTS publishes_at ON publishes (at, seq);
CREATE TABLE IF NOT EXISTS published_items (
    publish_seq INTEGER NOT NULL,
    key         TEXT NOT NULL,
    commit_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    deleted     INTEGER NOT NULL,
    PRIMARY KEY (publish_seq, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS published_items_key ON published_items (key, publish_seq);
CREATE INDEX IF NOT EXISTS published_items_commit ON published_items (commit_id);
-- Container manifests, draft and live: "where used" without reading a single commit.
CREATE TABLE IF NOT EXISTS members (
    view      TEXT NOT NULL,     -- 'draft' or 'live'
    container TEXT NOT NULL,
    position  INTEGER NOT NULL,
    member    TEXT NOT NULL,
    pin       TEXT,
    PRIMARY KEY (view, container, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_member ON members (member, view);
-- Links, draft and live: expanded links, reverse links and dependents without reading commits.
CREATE TABLE IF NOT EXISTS links (
    view      TEXT NOT NULL,     -- 'draft' or 'live'
    source    TEXT NOT NULL,
    link_type TEXT NOT NULL,
    position  INTEGER NOT NULL,
    target    TEXT NOT NULL,
    PRIMARY KEY (view, source, link_type, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_target ON links (target, view, link_type);
-- The event feed, read off the first-parent history of `draft` and `main` (stream 'draft' or
-- 'main'): one row per commit of those branches (depth counts from the root, 1-based), and one
-- per event it records. Rebuilt the same way from git at any time, so cursors survive a reindex.
CREATE TABLE IF NOT EXISTS feed_commits (
    stream TEXT NOT NULL,
    depth  INTEGER NOT NULL,
    commit_id TEXT NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (stream, depth)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feed_commits_id ON feed_commits (commit_id);
CREATE TABLE IF NOT EXISTS feed (
    stream       TEXT NOT NULL,
    depth        INTEGER NOT NULL,
    position     INTEGER NOT NULL,
    anchor       INTEGER NOT NULL,  -- the draft depth it follows: its own depth, or the drafts a publish saw
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL,
    commit_id    TEXT NOT NULL,   -- the entity's commit
    action       TEXT NOT NULL,
    author_name  TEXT NOT NULL,
    author_email TEXT NOT NULL,
    update_type  TEXT,            -- publish events: what their publish commit says
    change_note  TEXT,
    PRIMARY KEY (stream, depth, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feed_commit ON feed (commit_id);
-- Draft changes whose entity ref has moved but which `refs/heads/draft` does not show yet, in
-- the order they were made (gitstore.entities.draft_branch folds them in). Written in the same
-- transaction as the change's own row, so the two never disagree.
CREATE TABLE IF NOT EXISTS draft_unfolded (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    key       TEXT NOT NULL,
    commit_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


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


class EntityIndex:
    """The index of one repository. Safe to share between threads: each gets a connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._recorded_draft_head: str | None = None
        db = self._db()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        has_tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] > 0
        #: True when an index of another schema was thrown away: the caller must reindex.
        self.needs_rebuild = has_tables and version != SCHEMA_VERSION
        if self.needs_rebuild:
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall():
                db.execute(f'DROP TABLE "{name}"')
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # Derived data: a lost tail after power loss is rebuilt from git at startup.
            db.execute("PRAGMA synchronous=NORMAL")
            local.db, local.pid = db, os.getpid()
        return local.db  # type: ignore[no-any-return]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            finally:
                # After a failed statement or COMMIT (a full disk) SQLite may or may not have rolled
                # back, by its documentation; a transaction left open would refuse later writes.
                if db.in_transaction:
                    db.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
                raise StorageFull("no space left on the device") from exc
            raise

    # -- writes -------------------------------------------------------------------------------

    def record_drafts(
        self,
        rows: Iterable[DraftRow],
        changes: Iterable[ChangeRow] = (),
        *,
        draft_head: str | None = None,
        unfolded: bool = False,
    ) -> int:
        """Upsert the draft side of entities, and add their changes to the activity log.

        With `unfolded`, each row's commit also waits to be folded into `draft`. Returns how
        many changes wait (0 without `unfolded`)."""
        rows = list(rows)
        with self._write() as db:
            _set_drafts(db, rows)
            _insert_changes(db, changes)
            if draft_head is not None:
                _set_meta(db, "draft_head", draft_head)
            if not unfolded:
                return 0
            db.executemany(
                "INSERT INTO draft_unfolded (key, commit_id) VALUES (?, ?)", [(r.key, r.commit) for r in rows]
            )
            return int(db.execute("SELECT count(*) FROM draft_unfolded").fetchone()[0])

    def record_fold(self, draft_head: str, folded: Iterable[tuple[str, str]]) -> None:
        """`draft` is at `draft_head`, which shows the changes `folded` (key, commit)."""
        with self._write() as db:
            db.executemany("DELETE FROM draft_unfolded WHERE key=? AND commit_id=?", list(folded))
            _set_meta(db, "draft_head", draft_head)

    def record_changes(self, changes: Iterable[ChangeRow]) -> None:
        with self._write() as db:
            _insert_changes(db, changes)

    def record_published(
        self, rows: Iterable[PublishedRow], *, main_head: str, publishes: Iterable[PublishRow] = ()
    ) -> None:
        """Set the published side of entities, log the publish operations, and remember which
        `main` commit all this reflects."""
        with self._write() as db:
            for p in publishes:
                cursor = db.execute(
                    """INSERT OR IGNORE INTO publishes (commit_id, author_name, author_email, at, summary,
                           update_type, change_note) VALUES (?, ?, ?, ?, ?, ?, ?)""",
                    (p.commit, p.author_name, p.author_email, p.at, p.summary, p.update_type, p.change_note),
                )
                if cursor.rowcount:
                    db.executemany(
                        "INSERT INTO published_items (publish_seq, key, commit_id, version, deleted) VALUES (?, ?, ?, ?, ?)",
                        [(cursor.lastrowid, k, c, v, int(d)) for k, c, v, d in p.items],
                    )
            _set_published(db, list(rows))
            _set_meta(db, "main_head", main_head)

    @contextmanager
    def as_if_drafted(self, rows: Sequence[DraftRow]) -> Iterator[None]:
        """Inside the block, this thread's reads see the index as it will be once `rows` are
        drafted (a batch asks what its own commit will make true before it writes it); other
        connections see nothing of it, and nothing is kept."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            _set_drafts(db, rows)
            yield
        finally:
            db.execute("ROLLBACK")

    @contextmanager
    def as_if_published(self, rows: Sequence[PublishedRow]) -> Iterator[None]:
        """Inside the block, this thread's reads see the index as it will be once `rows` are
        live (a publish asks what its own commit will make true before it writes it); other
        connections see nothing of it, and nothing is kept."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            _set_published(db, rows)
            yield
        finally:
            db.execute("ROLLBACK")

    def clear(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM entities")
            db.execute("DELETE FROM changes")
            db.execute("DELETE FROM publishes")
            db.execute("DELETE FROM published_items")
            db.execute("DELETE FROM members")
            db.execute("DELETE FROM links")
            db.execute("DELETE FROM feed_commits")
            db.execute("DELETE FROM feed")
            db.execute("DELETE FROM draft_unfolded")
            db.execute("DELETE FROM meta")
        self._recorded_draft_head = None

    def compact(self) -> None:
        """Rewrite the file without free pages and empty the write-ahead log: rows that `clear`
        deleted stay readable in free pages until then, and an erasure must not leave them."""
        db = self._db()
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- reads --------------------------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return None if row is None else row[0]

    def records_draft_head(self, head: str) -> bool:
        """Whether the index has caught up with `draft` at `head` (its `draft_head`). Once
        true it stays true while `draft` stays at `head`: the index only ever records the head
        `draft` has, so this process remembers the answer instead of asking on every write."""
        if self._recorded_draft_head == head:
            return True
        if self.meta("draft_head") != head:
            return False
        self._recorded_draft_head = head
        return True

    def unfolded(self) -> list[tuple[str, str]]:
        """The changes `draft` does not show yet, oldest first: (key, commit)."""
        return self._db().execute("SELECT key, commit_id FROM draft_unfolded ORDER BY seq").fetchall()

    def unfolded_mark(self) -> int | None:
        """Grows with every change that waits to be folded; None when none waits."""
        return self._db().execute("SELECT max(seq) FROM draft_unfolded").fetchone()[0]  # type: ignore[no-any-return]

    def draft_commit_of(self, key: str) -> str | None:
        row = self._db().execute("SELECT draft_commit FROM entities WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def draft_commits(self) -> dict[str, str]:
        return dict(self._db().execute("SELECT key, draft_commit FROM entities"))

    def commit_of_version(self, key: str, version: int) -> str | None:
        if version > _MAX_INTEGER:
            return None
        row = self._db().execute("SELECT commit_id FROM changes WHERE key=? AND version=?", (key, version)).fetchone()
        return None if row is None else row[0]

    def draft_holder(self, base_path: str, *, other_than: str) -> str | None:
        """The key whose current draft sits at `base_path`, other than `other_than`."""
        row = (
            self._db()
            .execute(
                """SELECT key FROM entities WHERE draft_base_path=? AND draft_deleted=0 AND key<>?
               LIMIT 1""",
                (base_path, other_than),
            )
            .fetchone()
        )
        return None if row is None else row[0]

    def translation_holder(self, content_id: str, locale: str, *, other_than: str) -> str | None:
        """The key whose current draft is document `content_id`'s translation in `locale`."""
        row = (
            self._db()
            .execute(
                """SELECT key FROM entities WHERE content_id=? AND locale=? AND draft_deleted=0 AND key<>?
                   LIMIT 1""",
                (content_id, locale, other_than),
            )
            .fetchone()
        )
        return None if row is None else row[0]

    def live_translation_holders(self, documents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(content_id, locale) -> key of the live entity that is that translation."""
        wanted = set(documents)
        found = {}
        for chunk in _chunks(sorted({content_id for content_id, _ in wanted})):
            marks = ",".join("?" * len(chunk))
            for content_id, locale, key in self._db().execute(
                f"""SELECT published_content_id, published_locale, key FROM entities
                    WHERE published_live=1 AND published_content_id IN ({marks})""",
                chunk,
            ):
                if (content_id, locale) in wanted:
                    found[(content_id, locale)] = key
        return found

    def live_holders(self, base_paths: Sequence[str]) -> dict[str, str]:
        """base_path -> key of the live entity there, for each path that is held."""
        if not base_paths:
            return {}
        marks = ",".join("?" * len(base_paths))
        return dict(
            self._db().execute(
                f"""SELECT published_base_path, key FROM entities
                    WHERE published_live=1 AND published_base_path IN ({marks})""",
                list(base_paths),
            )
        )

    def unpublished_keys(self) -> list[str]:
        """Keys whose draft content differs from what is published."""
        return [
            row[0]
            for row in self._db().execute(
                """SELECT key FROM entities
                   WHERE published_tree IS NULL AND draft_deleted=0
                      OR published_tree IS NOT NULL AND draft_tree<>published_tree
                   ORDER BY key"""
            )
        ]

    def list_keys(self, where: ListFilter, *, after: str | None, limit: int) -> list[str]:
        """Keys matching `where`, in key order, strictly after `after`."""
        clauses, params = _filter_sql(where)
        if after is not None:
            clauses.append("key > ?")
            params.append(after)
        sql = "SELECT key FROM entities WHERE " + " AND ".join(clauses) + " ORDER BY key LIMIT ?"
        return [row[0] for row in self._db().execute(sql, [*params, limit])]

    def usages(self, member: str) -> list[Usage]:
        """Every container whose draft or live manifest names `member`, by container key."""
        rows = self._db().execute(
            """SELECT container, view, max(pin IS NOT NULL) FROM members WHERE member=?
               GROUP BY container, view ORDER BY container, view""",
            (member,),
        )
        return [Usage(container, view, bool(pinned)) for container, view, pinned in rows]

    def containers_of_type(self, type_name: str) -> list[Usage]:
        """Every container of type `type_name` in a view whose manifest there names a member, by
        key (`pinned` is left False: the caller reads the manifest itself)."""
        rows = self._db().execute(
            """SELECT DISTINCT m.container, m.view FROM members m JOIN entities e ON e.key = m.container
               WHERE m.view='draft' AND e.type=? OR m.view='live' AND e.published_type=?
               ORDER BY m.container, m.view""",
            (type_name, type_name),
        )
        return [Usage(container, view, False) for container, view in rows]

    def states(self, keys: Sequence[str]) -> dict[str, EntityState]:
        """Each known key's draft and live commit and tree, in one query per 500 keys."""
        found: dict[str, EntityState] = {}
        db = self._db()
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                f"""SELECT key, draft_commit, draft_tree, draft_deleted, published_commit,
                           CASE WHEN published_live=1 THEN published_tree END
                    FROM entities WHERE key IN ({marks})""",
                chunk,
            ):
                found[row[0]] = EntityState(row[1], row[2], bool(row[3]), row[4], row[5])
        return found

    def counts(self) -> dict[str, int]:
        """How many entities (drafts not deleted, live), versions and publishes the index holds."""
        db = self._db()
        entities, drafts, live = db.execute(
            "SELECT count(*), coalesce(sum(draft_deleted=0), 0), coalesce(sum(published_live=1), 0) FROM entities"
        ).fetchone()
        versions = db.execute("SELECT count(*) FROM changes").fetchone()[0]
        publishes = db.execute("SELECT count(*) FROM publishes").fetchone()[0]
        return {"entities": entities, "drafts": drafts, "live": live, "versions": versions, "publishes": publishes}

    def ever_live_keys(self) -> set[str]:
        """Keys that were live at some point: published now or named in the publish log."""
        db = self._db()
        keys = {row[0] for row in db.execute("SELECT DISTINCT key FROM published_items")}
        keys.update(row[0] for row in db.execute("SELECT key FROM entities WHERE published_commit IS NOT NULL"))
        return keys

    def forget(self, keys: Sequence[str]) -> None:
        """Drop every row about `keys` (their draft branches were pruned) but their activity,
        which is an audit trail (gitstore.entities.pruned keeps it in git too)."""
        with self._write() as db:
            for key in keys:
                db.execute("DELETE FROM entities WHERE key=?", (key,))
                db.execute("DELETE FROM members WHERE container=?", (key,))
                db.execute("DELETE FROM links WHERE source=?", (key,))

    def ever_published(self, commits: Sequence[str]) -> set[str]:
        """Those of `commits` that were live at some point (appear in the publish log)."""
        found: set[str] = set()
        db = self._db()
        for chunk in _chunks(commits):
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in db.execute(
                    f"SELECT DISTINCT commit_id FROM published_items WHERE commit_id IN ({marks})", chunk
                )
            )
        return found

    def keys_live_by(self, keys: Sequence[str], main_commit: str) -> set[str]:
        """Those of `keys` published in the publish `main_commit` records or an earlier one: a
        fact of history, the same whenever it is asked."""
        found: set[str] = set()
        db = self._db()
        row = db.execute("SELECT seq FROM publishes WHERE commit_id=?", (main_commit,)).fetchone()
        if row is None:
            return found
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in db.execute(
                    f"SELECT DISTINCT key FROM published_items WHERE key IN ({marks}) AND publish_seq<=?",
                    [*chunk, row[0]],
                )
            )
        return found

    # -- links and documents ------------------------------------------------------------------

    def summaries(self, keys: Sequence[str], view: str) -> dict[str, Summary]:
        """Each of `keys` that is visible in `view` ("draft" or "live")."""
        columns, visible = _SUMMARY[view]
        found: dict[str, Summary] = {}
        db = self._db()
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for row in db.execute(f"SELECT {columns} FROM entities WHERE {visible} AND key IN ({marks})", chunk):
                found[row[0]] = Summary(*row)
        return found

    def translations(self, content_ids: Sequence[str], view: str) -> list[Summary]:
        """Every translation visible in `view` of each document in `content_ids`, by key."""
        columns, visible = _SUMMARY[view]
        document = _DOCUMENT[view][0]
        found: list[Summary] = []
        db = self._db()
        for chunk in _chunks(content_ids):
            marks = ",".join("?" * len(chunk))
            found += [
                Summary(*row)
                for row in db.execute(
                    f"SELECT {columns} FROM entities WHERE {visible} AND {document} IN ({marks}) ORDER BY key", chunk
                )
            ]
        return found

    def links_of(self, source: str, view: str) -> dict[str, list[str]]:
        """`source`'s links in `view`: link type -> targets, in order."""
        found: dict[str, list[str]] = {}
        for kind, target in self._db().execute(
            "SELECT link_type, target FROM links WHERE view=? AND source=? ORDER BY link_type, position",
            (view, source),
        ):
            found.setdefault(kind, []).append(target)
        return found

    def targets_of(self, sources: Sequence[str], view: str, link_types: Sequence[str]) -> set[str]:
        """Every target `sources` link to in `view` with one of `link_types`."""
        if not link_types:
            return set()
        type_marks = ",".join("?" * len(link_types))
        found: set[str] = set()
        for chunk in _chunks(sources):
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self._db().execute(
                    f"""SELECT DISTINCT target FROM links WHERE view=? AND source IN ({marks})
                        AND link_type IN ({type_marks})""",
                    [view, *chunk, *link_types],
                )
            )
        return found

    def linking_to(self, targets: Sequence[str], view: str, link_types: Sequence[str]) -> list[tuple[Any, ...]]:
        """(link type, *Summary fields) for each source visible in `view` that links to one of
        `targets` with one of `link_types`, in no particular order. Plain rows, because a hub
        can have thousands: a source that links twice appears twice."""
        if not link_types:
            return []
        columns, visible = _SUMMARY[view]
        columns = ", ".join(f"e.{c.strip()}" for c in columns.split(","))
        type_marks = ",".join("?" * len(link_types))
        found: list[tuple[Any, ...]] = []
        db = self._db()
        for chunk in _chunks(targets):
            marks = ",".join("?" * len(chunk))
            found += db.execute(
                f"""SELECT l.link_type, {columns} FROM links l JOIN entities e ON e.key = l.source
                    WHERE l.view=? AND l.target IN ({marks}) AND l.link_type IN ({type_marks})
                      AND e.{visible}""",
                [view, *chunk, *link_types],
            ).fetchall()
        return found

    def dependents(
        self, keys: Sequence[str], view: str, *, reverse_types: Sequence[str], breadcrumb_types: Sequence[str]
    ) -> set[str]:
        """Every entity whose expanded representation in `view` includes one of `keys`: what
        links to them (or to another translation of their document), what they link to with a
        type that has a reverse, everything below them along breadcrumb types, every container
        above them, and their other translations. One set-based query per rule."""
        if not keys:
            return set()
        db = self._db()
        document, _ = _DOCUMENT[view]
        visible = _SUMMARY[view][1]
        with self._scratch(db, "dep_roots", keys):
            db.execute("DROP TABLE IF EXISTS temp.dep_docs")
            # The visibility condition lets SQLite use the partial (document, locale) index.
            db.execute(
                f"""CREATE TEMP TABLE dep_docs AS SELECT DISTINCT e.key FROM entities e
                    WHERE e.{visible} AND e.{document} IN (
                        SELECT d.{document} FROM entities d WHERE d.key IN (SELECT key FROM dep_roots))
                    UNION SELECT key FROM dep_roots"""
            )
            # `+view` keeps SQLite on links_target (by target) rather than the primary key.
            found = {
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT source FROM links WHERE +view=? AND target IN (SELECT key FROM dep_docs)", (view,)
                )
            }
            found.update(row[0] for row in db.execute("SELECT key FROM dep_docs"))
            if reverse_types:
                marks = ",".join("?" * len(reverse_types))
                targets = [
                    row[0]
                    for row in db.execute(
                        f"""SELECT DISTINCT target FROM links WHERE view=? AND link_type IN ({marks})
                            AND source IN (SELECT key FROM dep_roots)""",
                        (view, *reverse_types),
                    )
                ]
                found.update(targets)
                found.update(
                    s.key
                    for s in self.translations([s.content_id for s in self.summaries(targets, view).values()], view)
                )
            if breadcrumb_types:
                marks = ",".join("?" * len(breadcrumb_types))
                found.update(
                    row[0]
                    for row in db.execute(
                        f"""WITH RECURSIVE below(key) AS (
                                SELECT key FROM dep_docs
                                UNION SELECT l.source FROM links l JOIN below b ON l.target = b.key
                                WHERE l.view=? AND l.link_type IN ({marks}))
                            SELECT key FROM below""",
                        (view, *breadcrumb_types),
                    )
                )
            found.update(
                row[0]
                for row in db.execute(
                    """WITH RECURSIVE above(key) AS (
                           SELECT key FROM dep_roots
                           UNION SELECT m.container FROM members m JOIN above a ON m.member = a.key WHERE m.view=?)
                       SELECT key FROM above""",
                    (view,),
                )
            )
        return found - set(keys)

    def dependents_each(
        self, keys: Sequence[str], view: str, *, reverse_types: Sequence[str], breadcrumb_types: Sequence[str]
    ) -> dict[str, set[str]]:
        """`dependents` of each of `keys` on its own (a publish records each moved entity's):
        the same rules, each row carrying the key it started from, one query per rule."""
        found: dict[str, set[str]] = {key: set() for key in keys}
        if not keys:
            return found
        db = self._db()
        document, _ = _DOCUMENT[view]
        visible = _SUMMARY[view][1]

        def add(rows: Iterable[tuple[str, str]]) -> None:
            for root, key in rows:
                found[root].add(key)

        with self._scratch(db, "dep_roots", keys):
            db.execute("DROP TABLE IF EXISTS temp.dep_docs")
            db.execute(
                f"""CREATE TEMP TABLE dep_docs AS
                    SELECT d.key AS root, e.key AS key FROM entities d JOIN entities e
                        ON e.{document} = d.{document} AND e.{visible}
                    WHERE d.key IN (SELECT key FROM dep_roots)
                    UNION SELECT key, key FROM dep_roots"""
            )
            add(db.execute("SELECT root, key FROM dep_docs"))
            add(
                db.execute(
                    "SELECT d.root, l.source FROM dep_docs d JOIN links l ON l.target = d.key AND +l.view=?", (view,)
                )
            )
            if reverse_types:
                marks = ",".join("?" * len(reverse_types))
                pairs = db.execute(
                    f"""SELECT DISTINCT source, target FROM links WHERE view=? AND link_type IN ({marks})
                        AND source IN (SELECT key FROM dep_roots)""",
                    (view, *reverse_types),
                ).fetchall()
                add(pairs)
                targets = self.summaries(sorted({t for _, t in pairs}), view)
                documents: dict[str, set[str]] = {}
                for s in self.translations(sorted({s.content_id for s in targets.values()}), view):
                    documents.setdefault(s.content_id, set()).add(s.key)
                add((root, k) for root, t in pairs if t in targets for k in documents.get(targets[t].content_id, ()))
            if breadcrumb_types:
                marks = ",".join("?" * len(breadcrumb_types))
                add(
                    db.execute(
                        f"""WITH RECURSIVE below(root, key) AS (
                                SELECT root, key FROM dep_docs
                                UNION SELECT b.root, l.source FROM links l JOIN below b ON l.target = b.key
                                WHERE l.view=? AND l.link_type IN ({marks}))
                            SELECT root, key FROM below""",
                        (view, *breadcrumb_types),
                    )
                )
            add(
                db.execute(
                    """WITH RECURSIVE above(root, key) AS (
                           SELECT key, key FROM dep_roots
                           UNION SELECT a.root, m.container FROM members m JOIN above a ON m.member = a.key
                           WHERE m.view=?)
                       SELECT root, key FROM above""",
                    (view,),
                )
            )
        for root, deps in found.items():
            deps.discard(root)
        return found

    @contextmanager
    def _scratch(self, db: sqlite3.Connection, name: str, keys: Sequence[str]) -> Iterator[None]:
        """A temporary one-column table of `keys` for set-based queries (this connection only)."""
        db.execute(f"DROP TABLE IF EXISTS temp.{name}")
        db.execute(f"CREATE TEMP TABLE {name} (key TEXT PRIMARY KEY) WITHOUT ROWID")
        db.executemany(f"INSERT OR IGNORE INTO temp.{name} (key) VALUES (?)", [(k,) for k in keys])
        try:
            yield
        finally:
            db.execute(f"DROP TABLE IF EXISTS temp.{name}")
            db.execute("DROP TABLE IF EXISTS temp.dep_docs")

    # -- the event feed ---------------------------------------------------------------------

    def feed_tip(self, stream: str) -> tuple[int, str] | None:
        """(depth, commit) of the newest commit of `stream` the feed has read."""
        row = (
            self._db()
            .execute("SELECT depth, commit_id FROM feed_commits WHERE stream=? ORDER BY depth DESC LIMIT 1", (stream,))
            .fetchone()
        )
        return None if row is None else (row[0], row[1])

    def feed_commits_at(self, stream: str, depths: Sequence[int]) -> dict[int, str]:
        """depth -> commit of `stream`, for each of `depths` the feed has read."""
        marks = ",".join("?" * len(depths))
        rows = self._db().execute(
            f"SELECT depth, commit_id FROM feed_commits WHERE stream=? AND depth IN ({marks})", (stream, *depths)
        )
        return dict(rows.fetchall())

    def feed_depth(self, stream: str, commit: str) -> int | None:
        """The depth of `commit` in `stream`, if the feed has read it."""
        row = (
            self._db()
            .execute("SELECT depth FROM feed_commits WHERE stream=? AND commit_id=?", (stream, commit))
            .fetchone()
        )
        return None if row is None else row[0]

    def feed_depth_at(self, stream: str, at: int) -> int:
        """The depth of the newest commit of `stream` made at or before unix time `at`."""
        row = (
            self._db().execute("SELECT max(depth) FROM feed_commits WHERE stream=? AND at<=?", (stream, at)).fetchone()
        )
        return row[0] or 0

    def feed_append(self, stream: str, commits: Sequence[tuple[int, str, int]], rows: Sequence[FeedRow]) -> None:
        """Record commits read off `stream` and their events. Idempotent: two readers that
        read the same history write the same rows."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO feed_commits (stream, depth, commit_id, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(stream, depth, commit, at) for depth, commit, at in commits],
            )
            db.executemany(
                # ON CONFLICT, not OR IGNORE: only a row another reader already wrote is skipped;
                # a broken row must fail loudly rather than vanish from the feed.
                """INSERT INTO feed (stream, depth, position, anchor, at, kind, key, commit_id, action,
                       author_name, author_email, update_type, change_note)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT DO NOTHING""",
                [
                    (
                        r.stream,
                        r.depth,
                        r.position,
                        r.anchor,
                        r.at,
                        r.kind,
                        r.key,
                        r.commit,
                        r.action,
                        r.author_name,
                        r.author_email,
                        r.update_type,
                        r.change_note,
                    )
                    for r in rows
                ],
            )

    def feed_forget(self, stream: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM feed_commits WHERE stream=?", (stream,))
            db.execute("DELETE FROM feed WHERE stream=?", (stream,))

    def feed_knows(self, stream: str, commit: str) -> bool:
        """Whether an event of `stream` already names entity commit `commit`."""
        row = self._db().execute("SELECT 1 FROM feed WHERE commit_id=? AND stream=? LIMIT 1", (commit, stream))
        return row.fetchone() is not None

    def feed_after(self, stream: str, depth: int, position: int, limit: int) -> list[FeedRow]:
        """Events of `stream` after (depth, position), oldest first."""
        rows = self._db().execute(
            """SELECT stream, depth, position, anchor, at, kind, key, commit_id, action, author_name, author_email,
                      update_type, change_note
               FROM feed WHERE stream=? AND (depth, position) > (?, ?) ORDER BY depth, position LIMIT ?""",
            (stream, depth, position, limit),
        )
        return [FeedRow(*row) for row in rows]

    def feed_end(self, stream: str) -> tuple[int, int]:
        """(depth, position) of the newest event of `stream`, or (0, 0)."""
        row = (
            self._db()
            .execute(
                "SELECT depth, position FROM feed WHERE stream=? ORDER BY depth DESC, position DESC LIMIT 1", (stream,)
            )
            .fetchone()
        )
        return (0, 0) if row is None else (row[0], row[1])

    # -- history ----------------------------------------------------------------------------

    def changes(
        self, *, key: str | None = None, author: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[tuple[int, ChangeRow]]:
        """(seq, change) newest first; `author` matches an email or a name; `before` a seq."""
        clauses, params = ["1=1"], []
        if key is not None:
            clauses.append("key=?")
            params.append(key)
        if author is not None:
            clauses.append("(author_email=? OR author_name=?)")
            params += [author, author]
        if before is not None:
            clauses.append("seq<?")
            params.append(min(before, _MAX_INTEGER))
        rows = self._db().execute(
            "SELECT seq, key, version, commit_id, action, author_name, author_email, at FROM changes WHERE "
            + " AND ".join(clauses)
            + " ORDER BY seq DESC LIMIT ?",
            [*params, limit],
        )
        return [(row[0], ChangeRow(*row[1:])) for row in rows]

    def publishes(
        self, *, before: int | None = None, limit: int = 50, key: str | None = None, author: str | None = None
    ) -> list[tuple[int, PublishRow]]:
        """(seq, publish) newest first, each with the entities it moved; only those that moved
        `key`, or made by `author` (e-mail address or name), if given."""
        db = self._db()
        clauses, params = ["seq<?"], [_MAX_INTEGER if before is None else min(before, _MAX_INTEGER)]
        if key is not None:
            clauses.append("seq IN (SELECT publish_seq FROM published_items WHERE key=?)")
            params.append(key)
        if author is not None:
            clauses.append("(author_email=? OR author_name=?)")
            params += [author, author]
        rows = db.execute(
            "SELECT seq, commit_id, author_name, author_email, at, summary, update_type, change_note FROM publishes "
            "WHERE " + " AND ".join(clauses) + " ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        found = []
        for seq, commit, name, email, at, summary, update_type, change_note in rows:
            items = tuple(
                (k, c, v, bool(d))
                for k, c, v, d in db.execute(
                    "SELECT key, commit_id, version, deleted FROM published_items WHERE publish_seq=? ORDER BY key",
                    (seq,),
                )
            )
            found.append((seq, PublishRow(commit, name, email, at, items, summary, update_type, change_note)))
        return found

    def publish_seq_at(self, at: int) -> int | None:
        """The newest publish made at or before unix time `at`."""
        row = self._db().execute("SELECT max(seq) FROM publishes WHERE at<=?", (at,)).fetchone()
        return row[0]

    def published_as_of(self, key: str, publish_seq: int) -> tuple[str, bool] | None:
        """(commit, deleted) of `key` as live after publish `publish_seq`, or None."""
        row = (
            self._db()
            .execute(
                """SELECT commit_id, deleted FROM published_items WHERE key=? AND publish_seq<=?
               ORDER BY publish_seq DESC LIMIT 1""",
                (key, publish_seq),
            )
            .fetchone()
        )
        return None if row is None else (row[0], bool(row[1]))

    def live_keys_as_of(self, publish_seq: int, *, after: str | None, limit: int) -> list[tuple[str, str]]:
        """(key, commit) of every entity live after publish `publish_seq`, in key order."""
        rows = self._db().execute(
            """SELECT p.key, p.commit_id FROM published_items p
               WHERE p.publish_seq = (SELECT max(q.publish_seq) FROM published_items q
                                      WHERE q.key = p.key AND q.publish_seq <= ?)
                 AND p.deleted = 0 AND p.key > ?
               ORDER BY p.key LIMIT ?""",
            (publish_seq, after or "", limit),
        )
        return [(row[0], row[1]) for row in rows]

    def publish_times(self, key: str) -> dict[str, int]:
        """commit -> when it first went live, for every commit of `key` that was ever published."""
        rows = self._db().execute(
            """SELECT i.commit_id, min(p.at) FROM published_items i JOIN publishes p ON p.seq = i.publish_seq
               WHERE i.key=? GROUP BY i.commit_id""",
            (key,),
        )
        return {row[0]: row[1] for row in rows}


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _insert_changes(db: sqlite3.Connection, changes: Iterable[ChangeRow]) -> None:
    db.executemany(
        """INSERT OR IGNORE INTO changes (key, version, commit_id, action, author_name, author_email, at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        [(c.key, c.version, c.commit, c.action, c.author_name, c.author_email, c.at) for c in changes],
    )


def _filter_sql(where: ListFilter) -> tuple[list[str], list[object]]:
    published = where.state == "published"
    # A page unpublished as gone, vanish or redirect holds its path, but is not content to list.
    served = "(published_unpublishing IS NULL OR published_unpublishing='withdrawn')"
    clauses = ["published_live=1", served] if published else [f"draft_deleted={int(where.deleted)}"]
    params: list[object] = []
    if where.title is not None:
        escaped = where.title.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(("published_title" if published else "title") + " LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if where.author is not None:
        clauses.append("key IN (SELECT key FROM changes WHERE author_email=? OR author_name=?)")
        params += [where.author, where.author]
    if where.type is not None:
        clauses.append("published_type=?" if published else "type=?")
        params.append(where.type)
    if where.locale is not None:
        clauses.append("published_locale=?" if published else "locale=?")
        params.append(where.locale)
    if where.has_unpublished_changes is not None:
        differs = "(published_tree IS NULL OR draft_tree<>published_tree)"
        clauses.append(differs if where.has_unpublished_changes else f"NOT {differs}")
    return clauses, params


def _set_members(
    db: sqlite3.Connection, view: str, container: str, members: tuple[tuple[str, str | None], ...] | None
) -> None:
    db.execute("DELETE FROM members WHERE view=? AND container=?", (view, container))
    if members:
        db.executemany(
            "INSERT INTO members (view, container, position, member, pin) VALUES (?, ?, ?, ?, ?)",
            [(view, container, i, key, pin) for i, (key, pin) in enumerate(members)],
        )


def _set_published(db: sqlite3.Connection, rows: Sequence[PublishedRow]) -> None:
    db.executemany(
        """UPDATE entities SET published_commit=?, published_tree=?, published_base_path=?,
               published_type=?, published_locale=?, published_title=?, published_content_id=?,
               published_unpublishing=?, published_live=? WHERE key=?""",
        [
            (
                r.commit,
                r.tree,
                r.base_path,
                r.type,
                r.locale,
                r.title,
                r.content_id or r.key,
                r.unpublishing,
                int(r.live),
                r.key,
            )
            for r in rows
        ],
    )
    for r in rows:
        _set_members(db, "live", r.key, r.members if r.live else None)
        _set_links(db, "live", r.key, r.links if r.live else None)


def _set_links(db: sqlite3.Connection, view: str, source: str, links: dict[str, list[str]] | None) -> None:
    db.execute("DELETE FROM links WHERE view=? AND source=?", (view, source))
    if links:
        db.executemany(
            "INSERT INTO links (view, source, link_type, position, target) VALUES (?, ?, ?, ?, ?)",
            [(view, source, kind, i, target) for kind, targets in links.items() for i, target in enumerate(targets)],
        )


def _set_meta(db: sqlite3.Connection, name: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))


def _set_drafts(db: sqlite3.Connection, rows: Iterable[DraftRow]) -> None:
    for r in rows:
        db.execute(
            """INSERT INTO entities (key, type, locale, title, content_id, unpublishing, draft_commit,
                   draft_tree, draft_base_path, draft_deleted, version)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET type=excluded.type,
                   locale=excluded.locale, title=excluded.title, content_id=excluded.content_id,
                   unpublishing=excluded.unpublishing, draft_commit=excluded.draft_commit,
                   draft_tree=excluded.draft_tree,
                   draft_base_path=excluded.draft_base_path,
                   draft_deleted=excluded.draft_deleted, version=excluded.version""",
            (
                r.key,
                r.type,
                r.locale,
                r.title,
                r.content_id or r.key,
                r.unpublishing,
                r.commit,
                r.tree,
                r.base_path,
                int(r.deleted),
                r.version,
            ),
        )
        _set_members(db, "draft", r.key, None if r.deleted else r.members)
        _set_links(db, "draft", r.key, None if r.deleted else r.links)

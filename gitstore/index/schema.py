"""The index's SQLite file: its schema, its version, and a connection per thread.

An index written by another SCHEMA_VERSION is dropped on opening (`needs_rebuild`): it is
derived data, rebuilt from git by gitstore.upkeep.repair.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gitstore.errors import StorageFull

# SQLite's INTEGER range: a client's version number or cursor past it cannot match a row, and
# binding it would raise OverflowError.
_MAX_INTEGER = (1 << 63) - 1

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
-- The few containers that pin: a cycle check starts its walk up from them too.
CREATE INDEX IF NOT EXISTS members_pinned ON members (view, container) WHERE pin IS NOT NULL;
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


class IndexDatabase:
    """One index file, opened with the current schema. The parts of EntityIndex build on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
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

    def close(self) -> None:
        """Close the calling thread's connection now. Each closes by itself once nothing holds
        it, which may wait for the garbage collector: a caller about to rename or replace the
        index file must not leave SQLite an open connection (and its -shm) under the old name."""
        local = self._local
        db = getattr(local, "db", None)
        if db is not None and local.pid == os.getpid():
            db.close()
        local.__dict__.clear()

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


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])

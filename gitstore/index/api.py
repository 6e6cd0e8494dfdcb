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

__all__ = ["DraftRow", "EntityIndex", "ListFilter", "PublishedRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    key                 TEXT PRIMARY KEY,
    type                TEXT NOT NULL,
    locale              TEXT NOT NULL,
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
    published_live      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entities_draft_path ON entities (draft_base_path)
    WHERE draft_base_path IS NOT NULL AND draft_deleted = 0;
CREATE INDEX IF NOT EXISTS entities_live_path ON entities (published_base_path)
    WHERE published_base_path IS NOT NULL AND published_live = 1;
CREATE TABLE IF NOT EXISTS versions (
    key     TEXT NOT NULL,
    version INTEGER NOT NULL,
    commit_id TEXT NOT NULL,
    PRIMARY KEY (key, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


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


@dataclass(frozen=True, slots=True)
class PublishedRow:
    key: str
    commit: str
    tree: str
    base_path: str | None
    type: str
    locale: str
    live: bool


@dataclass(frozen=True, slots=True)
class ListFilter:
    state: str = "draft"  # "draft" or "published"
    type: str | None = None
    locale: str | None = None
    has_unpublished_changes: bool | None = None


class EntityIndex:
    """The index of one repository. Safe to share between threads: each gets a connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

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
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- writes -------------------------------------------------------------------------------

    def record_drafts(self, rows: Iterable[DraftRow], *, draft_head: str | None = None) -> None:
        """Upsert the draft side of entities and their version -> commit rows."""
        with self._write() as db:
            for r in rows:
                db.execute(
                    """INSERT INTO entities (key, type, locale, draft_commit, draft_tree,
                           draft_base_path, draft_deleted, version)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (key) DO UPDATE SET type=excluded.type,
                           locale=excluded.locale, draft_commit=excluded.draft_commit,
                           draft_tree=excluded.draft_tree,
                           draft_base_path=excluded.draft_base_path,
                           draft_deleted=excluded.draft_deleted, version=excluded.version""",
                    (
                        r.key,
                        r.type,
                        r.locale,
                        r.commit,
                        r.tree,
                        r.base_path,
                        int(r.deleted),
                        r.version,
                    ),
                )
                db.execute(
                    "INSERT OR REPLACE INTO versions (key, version, commit_id) VALUES (?, ?, ?)",
                    (r.key, r.version, r.commit),
                )
            if draft_head is not None:
                _set_meta(db, "draft_head", draft_head)

    def record_versions(self, key: str, versions: Iterable[tuple[int, str]]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO versions (key, version, commit_id) VALUES (?, ?, ?)",
                [(key, v, c) for v, c in versions],
            )

    def record_published(self, rows: Iterable[PublishedRow], *, main_head: str) -> None:
        """Set the published side of entities, and remember which `main` commit it reflects."""
        with self._write() as db:
            db.executemany(
                """UPDATE entities SET published_commit=?, published_tree=?, published_base_path=?,
                       published_type=?, published_locale=?, published_live=? WHERE key=?""",
                [(r.commit, r.tree, r.base_path, r.type, r.locale, int(r.live), r.key) for r in rows],
            )
            _set_meta(db, "main_head", main_head)

    def clear(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM entities")
            db.execute("DELETE FROM versions")
            db.execute("DELETE FROM meta")

    # -- reads --------------------------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return None if row is None else row[0]

    def draft_commit_of(self, key: str) -> str | None:
        row = self._db().execute("SELECT draft_commit FROM entities WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def draft_commits(self) -> dict[str, str]:
        return dict(self._db().execute("SELECT key, draft_commit FROM entities"))

    def commit_of_version(self, key: str, version: int) -> str | None:
        row = self._db().execute("SELECT commit_id FROM versions WHERE key=? AND version=?", (key, version)).fetchone()
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


def _filter_sql(where: ListFilter) -> tuple[list[str], list[object]]:
    published = where.state == "published"
    clauses = ["published_live=1"] if published else ["draft_deleted=0"]
    params: list[object] = []
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


def _set_meta(db: sqlite3.Connection, name: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

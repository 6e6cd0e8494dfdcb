"""The activity log (every draft change), the publish log, and what was live as of a publish."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from gitstore.index.rows import ChangeRow, PublishRow
from gitstore.index.schema import _MAX_INTEGER, IndexDatabase, _chunks


class LogIndex(IndexDatabase):
    """The activity log (one row per entity version), the publish log (one row per publish
    and the entities it moved), and the questions of history they answer."""

    def record_changes(self, changes: Iterable[ChangeRow]) -> None:
        with self._write() as db:
            _insert_changes(db, changes)

    def commit_of_version(self, key: str, version: int) -> str | None:
        if version > _MAX_INTEGER:
            return None
        row = self._db().execute("SELECT commit_id FROM changes WHERE key=? AND version=?", (key, version)).fetchone()
        return None if row is None else row[0]

    def ever_live_keys(self) -> set[str]:
        """Keys that were live at some point: published now or named in the publish log."""
        db = self._db()
        keys = {row[0] for row in db.execute("SELECT DISTINCT key FROM published_items")}
        keys.update(row[0] for row in db.execute("SELECT key FROM entities WHERE published_commit IS NOT NULL"))
        return keys

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

    # -- history ----------------------------------------------------------------------------

    def changes(
        self, *, key: str | None = None, author: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[tuple[int, ChangeRow]]:
        """(seq, change) newest first; `author` matches an email or a name; `before` a seq."""
        clauses: list[str] = ["1=1"]
        params: list[str | int] = []
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
        clauses: list[str] = ["seq<?"]
        params: list[str | int] = [_MAX_INTEGER if before is None else min(before, _MAX_INTEGER)]
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
        seq: int | None = row[0]
        return seq

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


def _insert_changes(db: sqlite3.Connection, changes: Iterable[ChangeRow]) -> None:
    db.executemany(
        """INSERT OR IGNORE INTO changes (key, version, commit_id, action, author_name, author_email, at)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        [(c.key, c.version, c.commit, c.action, c.author_name, c.author_email, c.at) for c in changes],
    )


def _insert_publishes(db: sqlite3.Connection, publishes: Iterable[PublishRow]) -> None:
    """Log each publish with the entities it moved; one already logged is left as it is."""
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

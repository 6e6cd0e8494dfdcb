"""The event feed's tables: the commits read off `draft` and `main`, and their events."""

from __future__ import annotations

from collections.abc import Sequence

from gitstore.index.rows import FeedRow
from gitstore.index.schema import IndexDatabase


class FeedIndex(IndexDatabase):
    """The event feed: the commits of `draft` and `main` the feed has read, and their events."""

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

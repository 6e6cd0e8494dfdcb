"""The derived index: one SQLite file per repository that answers listings and lookups.

Git is the source of truth; everything here can be thrown away and rebuilt from refs
(`gitstore reindex`). It exists so that no request scans refs or walks history: listing with
filters, "who holds this base_path", "which commit is version N".

Writers update it while holding the repository lock that guards the refs they moved, right
after the ref moved, so it lags git by at most one crash. Startup repair closes that gap.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from gitstore.index.feed import FeedIndex
from gitstore.index.graph import GraphIndex, _set_links, _set_members
from gitstore.index.log import LogIndex, _insert_changes, _insert_publishes
from gitstore.index.rows import (
    ChangeRow,
    DraftRow,
    EntityState,
    FeedRow,
    ListFilter,
    PublishedRow,
    PublishRow,
    Summary,
    Usage,
)
from gitstore.index.schema import _chunks

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


class EntityIndex(LogIndex, GraphIndex, FeedIndex):
    """The index of one repository. Safe to share between threads: each gets a connection."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._recorded_draft_head: str | None = None

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

    def record_published(
        self, rows: Iterable[PublishedRow], *, main_head: str, publishes: Iterable[PublishRow] = ()
    ) -> None:
        """Set the published side of entities, log the publish operations, and remember which
        `main` commit all this reflects."""
        with self._write() as db:
            _insert_publishes(db, publishes)
            _set_published(db, list(rows))
            _set_meta(db, "main_head", main_head)

    def as_if_drafted(self, rows: Sequence[DraftRow]) -> AbstractContextManager[None]:
        """Inside the block, this thread's reads see the index as it will be once `rows` are
        drafted (a batch asks what its own commit will make true before it writes it)."""
        return self._as_if(lambda db: _set_drafts(db, rows))

    def as_if_published(self, rows: Sequence[PublishedRow]) -> AbstractContextManager[None]:
        """Inside the block, this thread's reads see the index as it will be once `rows` are
        live (a publish asks what its own commit will make true before it writes it)."""
        return self._as_if(lambda db: _set_published(db, rows))

    @contextmanager
    def _as_if(self, write: Callable[[sqlite3.Connection], None]) -> Iterator[None]:
        """`write` in a transaction rolled back after the block: other connections see nothing
        of it, and nothing is kept."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            write(db)
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

    def forget(self, keys: Sequence[str]) -> None:
        """Drop every row about `keys` (their draft branches were pruned) but their activity,
        which is an audit trail (gitstore.entities.pruned keeps it in git too)."""
        with self._write() as db:
            for key in keys:
                db.execute("DELETE FROM entities WHERE key=?", (key,))
                db.execute("DELETE FROM members WHERE container=?", (key,))
                db.execute("DELETE FROM links WHERE source=?", (key,))


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

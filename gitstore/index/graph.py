"""Links and container members, draft and live: usages, reverse links, dependents."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from gitstore.index.rows import Summary, Usage
from gitstore.index.schema import IndexDatabase, _chunks

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


class GraphIndex(IndexDatabase):
    """Who links to what and which container holds what, in each view, and what that makes
    depend on an entity."""

    def usages(self, member: str) -> list[Usage]:
        """Every container whose draft or live manifest names `member`, by container key."""
        rows = self._db().execute(
            """SELECT container, view, max(pin IS NOT NULL) FROM members WHERE member=?
               GROUP BY container, view ORDER BY container, view""",
            (member,),
        )
        return [Usage(container, view, bool(pinned)) for container, view, pinned in rows]

    def holders_above(self, keys: Sequence[str], view: str) -> set[str]:
        """`keys` and every container above them in `view`: whose manifest names one of them, or
        names such a container, and so on up. One recursive query; a cycle ends it."""
        if not keys:
            return set()
        rows = self._db().execute(
            """WITH RECURSIVE above(key) AS (
                    SELECT value FROM json_each(?)
                    UNION SELECT m.container FROM members m JOIN above a ON m.member = a.key WHERE m.view=?
                ) SELECT key FROM above""",
            (orjson.dumps(list(keys)).decode(), view),
        )
        return {row[0] for row in rows}

    def pinning(self, view: str) -> set[str]:
        """Every container whose manifest in `view` pins a member (a partial index keeps it cheap)."""
        rows = self._db().execute("SELECT DISTINCT container FROM members WHERE view=? AND pin IS NOT NULL", (view,))
        return {row[0] for row in rows}

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


def _set_members(
    db: sqlite3.Connection, view: str, container: str, members: tuple[tuple[str, str | None], ...] | None
) -> None:
    db.execute("DELETE FROM members WHERE view=? AND container=?", (view, container))
    if members:
        db.executemany(
            "INSERT INTO members (view, container, position, member, pin) VALUES (?, ?, ?, ?, ?)",
            [(view, container, i, key, pin) for i, (key, pin) in enumerate(members)],
        )


def _set_links(db: sqlite3.Connection, view: str, source: str, links: dict[str, list[str]] | None) -> None:
    db.execute("DELETE FROM links WHERE view=? AND source=?", (view, source))
    if links:
        db.executemany(
            "INSERT INTO links (view, source, link_type, position, target) VALUES (?, ?, ?, ?, ?)",
            [(view, source, kind, i, target) for kind, targets in links.items() for i, target in enumerate(targets)],
        )

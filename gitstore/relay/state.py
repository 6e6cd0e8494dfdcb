"""What the relay keeps about a repository: each sink's cursor, webhook subscriptions, and the
delivery log. `<repo>.git/gitstore/relay.sqlite3`, beside the repository it describes.

It is service state, not content: nothing in git names it and no reindex can rebuild it (a
cursor says what a consumer was *told*, which history does not know). Unlike the derived index
it is written with `synchronous=FULL`: a cursor lost to a power cut only repeats events, but a
subscription acknowledged to its creator must not vanish. The file is 0600, because it holds
webhook secrets, which must be kept in the clear to sign with.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from gitstore.errors import StorageFull
from gitstore.storage.api import PerRepository, fsync_dir

__all__ = [
    "Delivery",
    "RelayState",
    "Subscription",
    "copy_state",
    "install_snapshot",
    "install_state",
    "register_shipper",
    "ship_changed",
    "signature",
    "snapshot",
    "unregister_shipper",
]

FILE_NAME = "relay.sqlite3"
# The delivery log keeps this many attempts per subscription, newest first.
LOG_KEPT = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    sink    TEXT PRIMARY KEY,
    cursor  TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    active      INTEGER NOT NULL,
    failed      INTEGER NOT NULL DEFAULT 0,
    drafts      INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL,
    subscription   TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    event_kind     TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    status         TEXT NOT NULL,
    response_code  INTEGER,
    duration_ms    REAL NOT NULL,
    error          TEXT,
    at             REAL NOT NULL,
    redelivery     INTEGER NOT NULL DEFAULT 0,
    body           BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_subscription ON deliveries (subscription, seq);
"""


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    secret: str
    events: tuple[str, ...]  # event kinds, or ("*",)
    active: bool
    failed: bool  # gave up on an event after the last try; stays stopped until reactivated
    drafts: bool  # sees what the preview right sees; otherwise what a live reader sees
    created_by: str
    created_at: float

    @property
    def sink(self) -> str:
        return f"webhook:{self.id}"

    def wants(self, kind: str) -> bool:
        return "*" in self.events or kind in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str  # one event to one subscription: the same across its retries and redeliveries
    subscription: str
    event_id: str
    event_kind: str
    attempt: int
    status: str  # delivered | retrying | failed
    response_code: int | None
    duration_ms: float
    error: str | None
    at: float
    redelivery: bool
    body: bytes


class RelayState:
    """One repository's relay file. Every call opens its own connection: the relay's threads,
    request threads and other worker processes all write here, and SQLite's own locking
    (WAL, a busy timeout) orders them."""

    def __init__(self, control_dir: Path) -> None:
        self.path = control_dir / FILE_NAME

    def exists(self) -> bool:
        return self.path.is_file()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        created = not self.path.exists()
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise _storage_error(exc) from exc
        try:
            if created:
                os.chmod(self.path, 0o600)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            yield db
        except sqlite3.OperationalError as exc:
            raise _storage_error(exc) from exc
        finally:
            db.close()

    # -- cursors -------------------------------------------------------------------------------

    def cursor(self, sink: str) -> str | None:
        if not self.exists():
            return None
        with self._db() as db:
            row = db.execute("SELECT cursor FROM cursors WHERE sink=?", (sink,)).fetchone()
        return row[0] if row else None

    def store_cursor(self, sink: str, cursor: str) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO cursors (sink, cursor, at) VALUES (?, ?, ?) "
                "ON CONFLICT (sink) DO UPDATE SET cursor=excluded.cursor, at=excluded.at",
                (sink, cursor, time.time()),
            )

    # -- subscriptions -------------------------------------------------------------------------

    def add_subscription(self, sub: Subscription, start: str) -> None:
        """The subscription and its cursor (where its events start) in one transaction."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sub.id,
                    sub.url,
                    sub.secret,
                    orjson.dumps(list(sub.events)).decode(),
                    int(sub.active),
                    int(sub.failed),
                    int(sub.drafts),
                    sub.created_by,
                    sub.created_at,
                ),
            )
            db.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?, ?)", (sub.sink, start, time.time()))
            db.execute("COMMIT")

    def subscriptions(self) -> list[Subscription]:
        if not self.exists():
            return []
        with self._db() as db:
            rows = db.execute("SELECT * FROM subscriptions ORDER BY created_at, id").fetchall()
        return [_subscription(row) for row in rows]

    def subscription(self, sub_id: str) -> Subscription | None:
        if not self.exists():
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM subscriptions WHERE id=?", (sub_id,)).fetchone()
        return _subscription(row) if row else None

    def update_subscription(self, sub: Subscription) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE subscriptions SET url=?, secret=?, events=?, active=?, failed=? WHERE id=?",
                (
                    sub.url,
                    sub.secret,
                    orjson.dumps(list(sub.events)).decode(),
                    int(sub.active),
                    int(sub.failed),
                    sub.id,
                ),
            )

    def remove_subscription(self, sub_id: str) -> bool:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            gone = db.execute("DELETE FROM subscriptions WHERE id=?", (sub_id,)).rowcount
            db.execute("DELETE FROM cursors WHERE sink=?", (f"webhook:{sub_id}",))
            db.execute("DELETE FROM deliveries WHERE subscription=?", (sub_id,))
            db.execute("COMMIT")
        return bool(gone)

    # -- the delivery log ----------------------------------------------------------------------

    def log(self, d: Delivery) -> None:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO deliveries (id, subscription, event_id, event_kind, attempt, status, response_code, "
                "duration_ms, error, at, redelivery, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d.id,
                    d.subscription,
                    d.event_id,
                    d.event_kind,
                    d.attempt,
                    d.status,
                    d.response_code,
                    d.duration_ms,
                    d.error,
                    d.at,
                    int(d.redelivery),
                    d.body,
                ),
            )
            db.execute(
                "DELETE FROM deliveries WHERE subscription=? AND seq <= "
                "(SELECT seq FROM deliveries WHERE subscription=? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (d.subscription, d.subscription, LOG_KEPT),
            )
            db.execute("COMMIT")

    def deliveries(self, sub_id: str, *, limit: int = 50, delivery_id: str | None = None) -> list[Delivery]:
        """Newest first; with `delivery_id`, that delivery's attempts only."""
        if not self.exists():
            return []
        where, args = "subscription=?", [sub_id]
        if delivery_id is not None:
            where, args = where + " AND id=?", [*args, delivery_id]
        with self._db() as db:
            rows = db.execute(
                f"SELECT id, subscription, event_id, event_kind, attempt, status, response_code, duration_ms, "
                f"error, at, redelivery, body FROM deliveries WHERE {where} ORDER BY seq DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [
            Delivery(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], bool(r[10]), bytes(r[11]))
            for r in rows
        ]


#: In cluster mode, the owner's hook for each repository it ships to replicas: called once a
#: subscription change has committed and before it is answered, it returns when every in-sync
#: replica holds the new state, or raises (the change is then not acknowledged).
_shippers: PerRepository[Callable[[], None]] = PerRepository()


def register_shipper(git_dir: str | os.PathLike[str], ship: Callable[[], None]) -> None:
    _shippers.set(git_dir, ship)


def unregister_shipper(git_dir: str | os.PathLike[str]) -> None:
    _shippers.drop(git_dir)


def ship_changed(state: RelayState) -> None:
    """A subscription of `state` changed: hand it to the repository's replicas, if it has any."""
    found = _shippers.get(str(state.path.parent.parent))
    if found is not None:
        found()


def signature(control_dir: Path) -> tuple[int, ...]:
    """Changes whenever the relay file does (a cursor stored, a delivery logged): size and time
    of the file and its write-ahead log. Empty if there is no file."""
    found: list[int] = []
    for path in (control_dir / FILE_NAME, control_dir / f"{FILE_NAME}-wal"):
        try:
            info = os.stat(path)
        except FileNotFoundError:
            continue
        found += [info.st_size, info.st_mtime_ns]
    return tuple(found)


def snapshot(control_dir: Path) -> bytes | None:
    """One committed state of the relay file, whole (SQLite's online backup, into memory, while
    the relay and the API keep writing); None if the repository has none."""
    state = RelayState(control_dir)
    if not state.exists():
        return None
    source = sqlite3.connect(state.path, timeout=30)
    try:
        memory = sqlite3.connect(":memory:")
        try:
            source.backup(memory)
            return memory.serialize()
        finally:
            memory.close()
    finally:
        source.close()


def install_snapshot(control_dir: Path, data: bytes) -> None:
    """Make `data` (a `snapshot`) the relay file of `control_dir`, durably, in one rename: a
    replica's copy, which nothing opens until it is promoted. ValueError if it is not a SQLite
    database."""
    if not data.startswith(b"SQLite format 3\x00"):
        raise ValueError("not a SQLite database")
    control_dir.mkdir(exist_ok=True)
    written = control_dir / f".{FILE_NAME}-{uuid.uuid4().hex[:8]}"
    fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    for stale in (f"{FILE_NAME}-wal", f"{FILE_NAME}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control_dir / stale)
    os.rename(written, control_dir / FILE_NAME)
    fsync_dir(control_dir)


def copy_state(control_dir: Path, dest: Path) -> bool:
    """A consistent copy of the relay file of the repository whose control folder is
    `control_dir`, written to `dest` (for a backup); False if it has none. SQLite's online
    backup copies one committed state while the relay and the API keep writing."""
    state = RelayState(control_dir)
    if not state.exists():
        return False
    source = sqlite3.connect(state.path, timeout=30)
    try:
        copy = sqlite3.connect(dest)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    os.chmod(dest, 0o600)  # it holds webhook secrets, like the original
    return True


def install_state(control_dir: Path, copy: Path) -> None:
    """Put a copy made by `copy_state` in place as the relay file of `control_dir` (a
    repository nothing serves yet: a restore's staging copy)."""
    shutil.copyfile(copy, control_dir / FILE_NAME)
    os.chmod(control_dir / FILE_NAME, 0o600)


def _subscription(row: tuple) -> Subscription:  # type: ignore[type-arg]
    sub_id, url, secret, events, active, failed, drafts, created_by, created_at = row
    return Subscription(
        sub_id,
        url,
        secret,
        tuple(orjson.loads(events)),
        bool(active),
        bool(failed),
        bool(drafts),
        created_by,
        created_at,
    )


def _storage_error(exc: sqlite3.OperationalError) -> Exception:
    if "full" in str(exc).lower():
        return StorageFull("no room to record the relay's state")
    return exc

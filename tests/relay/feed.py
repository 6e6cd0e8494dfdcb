"""Changes made for the relay to carry, and the checks of what a consumer received against the
feed itself."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from gitstore import Store, content
from gitstore.errors import Busy
from gitstore.events import Event, read_events
from gitstore.publishing.api import PublishTarget
from tests.conftest import ADA


def publish_rounds(store: Store, names: Sequence[str], rounds: range, per_round: int = 10) -> None:
    """In each repository at once (a thread each), `per_round` pages drafted and published
    together per round: `per_round` events a round. Every third page of a round after the first
    is an update of a page of the first round, so creates and updates interleave."""
    failed: list[BaseException] = []

    def write(name: str) -> None:
        try:
            _write(name)
        except BaseException as exc:
            failed.append(exc)

    def _write(name: str) -> None:
        repo = store.repository(name)
        for r in rounds:
            keys = []
            for i in range(per_round):
                if r > 0 and i % 3 == 2:
                    key = f"p0-{i}"
                    _retried(
                        partial(content.patch_draft, repo, key, {"title": f"{name} {key} again in {r}"}, author=ADA)
                    )
                else:
                    key = f"p{r}-{i}"
                    _retried(
                        partial(content.put_draft, repo, key, {"type": "guide", "title": f"{name} {key}"}, author=ADA)
                    )
                keys.append(key)
            _retried(partial(content.publish, repo, [PublishTarget(k) for k in keys], author=ADA))

    threads = [threading.Thread(target=write, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not failed, failed


def _retried(write: Callable[[], object], tries: int = 5) -> None:
    """As a client retries a 503: a server killed mid-write leaves a ref lock that is not stale
    for two seconds, and a write that finds it meanwhile is Busy, having written nothing."""
    for attempt in range(tries):
        try:
            write()
            return
        except Busy:
            if attempt == tries - 1:
                raise
            time.sleep(1.0)


def live_feed(store: Store, name: str) -> list[Event]:
    """Every event a live reader sees, as the feed gives it."""
    repo, after, found = store.repository(name), None, []
    while True:
        page = read_events(repo, after=after, limit=500, drafts=False)
        if not page.items:
            return found
        found += page.items
        after = page.cursor


def as_a_reader_sees(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "view": event.view,
        "key": event.key,
        "commit": event.commit,
        "action": event.action,
        "author": {"name": event.author_name},  # never the e-mail address
        "at": event.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dependents": event.dependents,
        "update_type": event.update_type,
        "change_note": event.change_note,
    }


def check_in_order(feed: list[Event], bodies: list[dict[str, Any]]) -> list[str]:
    """Every event arrived, in feed order, each with the feed's own payload, and a repeat only
    ever goes back (a run handed over again), never skips ahead. Returns the ids repeated."""
    position = {e.id: n for n, e in enumerate(feed)}
    by_id = {e.id: e for e in feed}
    furthest, seen, repeated = -1, set(), []
    for body in bodies:
        n = position[body["id"]]
        assert n <= furthest + 1, f"skipped from {feed[furthest].id} to {body['id']}"
        furthest = max(furthest, n)
        assert body["event"] == as_a_reader_sees(by_id[body["id"]]), body["id"]
        if body["id"] in seen:
            repeated.append(body["id"])
        seen.add(body["id"])
    assert [e.id for e in feed] == list(dict.fromkeys(b["id"] for b in bodies))
    return repeated


def stored_cursor(data: Path, name: str, sink: str) -> str | None:
    """The cursor the relay stored for `sink`; None if it has stored none yet (a repository its
    lanes had not reached when the server was killed has no state file, or an empty one)."""
    path = data / f"{name}.git" / "gitstore" / "relay.sqlite3"
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:  # read-only: never create it
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='cursors'").fetchone() is None:
            return None
        row = db.execute("SELECT cursor FROM cursors WHERE sink=?", (sink,)).fetchone()
    return row[0] if row else None

"""Failover with real nodes on one real PostgreSQL (issue 24, ADR 0016): kill -9 and SIGSTOP of a
repository's owner under four writers, with a client-side log of every acknowledged ETag, a
feed cursor taken before the takeover resumed after it, and a webhook that goes on from the new
owner where the old one stopped.
The suite runs one kill; `make failover-soak` runs 10 (GITSTORE_FAILOVER_ROUNDS)."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.cluster.moving import cluster, percentile
from tests.cluster.nodes import Node
from tests.cluster.replicating import (
    Spread,
    by_name,
    check_acknowledged,
    copy_path,
    first_acknowledged_after,
    in_sync,
    owner_now,
    same_refs,
    wait_in_sync,
    wait_owner,
)
from tests.relay.receiver import Receiver

ROUNDS = int(os.environ.get("GITSTORE_FAILOVER_ROUNDS", "1"))


SECRET = "a-webhook-secret-of-24-chars"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def _webhooks_allowed(made: list[Node]) -> None:
    for node in made:
        node.env["GITSTORE_WEBHOOK_ALLOW"] = "127.0.0.1"


def test_kill_9_of_the_owner_under_four_writers_loses_no_acknowledged_write(
    tmp_path: Path, cluster_dsn: str, receiver: Receiver
) -> None:
    with cluster(tmp_path, cluster_dsn, before_start=_webhooks_allowed) as made:
        assert httpx.post(f"{made[0].url}/repos", json={"name": "course"}).status_code == 201
        (replica,) = wait_in_sync(cluster_dsn, "course")
        receiver.secrets["/hook"] = SECRET
        hook = httpx.post(
            f"{made[0].url}/repos/course/webhooks",
            json={"url": f"{receiver.url}/hook", "secret": SECRET, "drafts": True},
        )
        assert hook.status_code == 201, hook.text
        failovers, killed_at = [], 0.0
        with Spread("course", [n.url for n in made], retry_for=60) as writers:
            for round_ in range(1, ROUNDS + 1):
                time.sleep(random.uniform(0.3, 1.2))
                if round_ == 1:  # the in-sync replica holds the subscription, its cursor moving
                    replica_cursor(by_name(made, replica), f"webhook:{hook.json()['id']}", moved=True)
                owner = owner_now(made, "course")
                moment = time.time()
                killed_at = killed_at or moment
                owner.kill()
                wait_owner(next(n for n in made if n.proc is not None).url, "course", not_=owner.name)
                failovers.append(first_acknowledged_after(writers, moment))
                if round_ < ROUNDS:  # back: its copy set aside, it catches up as a replica
                    owner.start()
                    wait_in_sync(cluster_dsn, "course")
            time.sleep(0.5)
        final = owner_now(made, "course")
        print(
            f"\nfailover: {ROUNDS} kills, {len(writers.acknowledged)} acknowledged writes, "
            f"{len(writers.log)} answers, failover p50 {percentile(failovers, 50):.2f} s max {max(failovers):.2f} s"
        )
        assert not writers.gave_up, writers.gave_up[:3]
        check_acknowledged(writers, final.data / "course.git")
        for name in in_sync(cluster_dsn, "course"):
            copy = copy_path(by_name(made, name), "course")
            same_refs(final.data / "course.git", copy)
            check_acknowledged(writers, copy)
        assert max(failovers) < 10.0, failovers
        # The webhook went on from the new owner: every event of the feed delivered, the ones
        # after the takeover included. Repeats only since the last cursor the replica was sent:
        # a relay starting over would repeat every event delivered before the kill.
        feed = [str(e["id"]) for e in events(final.url, "course")[0]]
        receiver.wait_for(lambda: set(feed) <= delivered(receiver), timeout=60)
        assert set(feed) <= delivered(receiver), f"{len(set(feed) - delivered(receiver))} events never delivered"
        repeats = sum(n - 1 for n in Counter(delivered(receiver, every=True)).values())
        before = delivered(receiver, until=killed_at)
        print(f"webhook: {len(feed)} events, {len(before)} before the kill, {repeats} delivered again")
        assert repeats < len(before), (repeats, len(before))


def delivered(receiver: Receiver, *, every: bool = False, until: float | None = None) -> Any:
    """The event ids the receiver took (200; before `until`, if given), as a set, or with
    `every` a list with repeats."""
    ids = [
        next(v for k, v in r["headers"].items() if k.lower() == "x-gitstore-event-id")
        for r in receiver.got("/hook", status=200)
        if until is None or r["at"] < until
    ]
    return ids if every else set(ids)


def replica_cursor(node: Node, sink: str, *, moved: bool, timeout: float = 20.0) -> str:
    """The cursor of `sink` in `node`'s replica of the relay file; with `moved`, once it is past
    where the subscription started (a cursor shipped on a tick, not only the subscription)."""
    path = copy_path(node, "course") / "gitstore" / "relay.sqlite3"
    deadline = time.monotonic() + timeout
    first = None
    while True:
        found = None
        if path.exists():
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                row = db.execute("select cursor from cursors where sink = ?", (sink,)).fetchone()
            found = row[0] if row else None
        first = first or found
        if found is not None and (not moved or found != first):
            return str(found)
        assert time.monotonic() < deadline, f"{sink} on {node.name}: {found!r}"
        time.sleep(0.1)


def test_an_owner_paused_past_its_takeover_acknowledges_nothing_after_it(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn) as made:
        assert httpx.post(f"{made[0].url}/repos", json={"name": "course"}).status_code == 201
        wait_in_sync(cluster_dsn, "course")
        owner = owner_now(made, "course")
        others = [n for n in made if n is not owner]
        with Spread("course", [n.url for n in made], retry_for=60) as writers:
            time.sleep(0.5)
            seen_before, cursor_before = events(owner.url, "course", pages=1)
            owner.pause()
            try:
                taken_at = time.time()
                new = wait_owner(others[0].url, "course", not_=owner.name)
                first_acknowledged_after(writers, taken_at)
            finally:
                owner.resume()
            wait_in_sync(cluster_dsn, "course")  # the old owner caught up as a replica
            time.sleep(0.5)
        assert not writers.gave_up, writers.gave_up[:3]
        final = by_name(made, new)
        check_acknowledged(writers, final.data / "course.git")
        # What it held past the takeover was set aside, never merged: its replica equals the owner.
        same_refs(final.data / "course.git", copy_path(owner, "course"))
        assert sorted((owner.data / ".moved-away").glob("course.*.git"))
        # A feed cursor from the old owner resumes on the new one: nothing skipped, nothing repeated.
        everything, _ = events(final.url, "course")
        resumed, _ = events(final.url, "course", after=cursor_before)
        assert seen_before and resumed
        assert everything == seen_before + resumed


def events(url: str, repo: str, after: str | None = None, pages: int = 100) -> tuple[list[dict[str, object]], str]:
    """The events of `repo`'s feed after `after` (from the start: None), up to `pages` pages of
    them, and the cursor after them."""
    items: list[dict[str, object]] = []
    for _ in range(pages):
        page = httpx.get(f"{url}/repos/{repo}/events", params={"limit": 1000} | ({"after": after} if after else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        if not body["items"]:
            return items, body["cursor"]
        items += body["items"]
        after = body["cursor"]
    return items, after

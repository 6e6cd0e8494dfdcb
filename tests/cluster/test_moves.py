"""Moving repositories between real nodes (tests/cluster/nodes.py) on one real PostgreSQL:
what moves with a repository, bad requests to move, and draining a node."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import orjson
import psycopg
import pytest

from tests.cluster.moving import (
    Writers,
    cluster,
    document,
    fsck,
    git,
    is_ancestor,
    owner_of,
    pauses,
    percentile,
    seeded,
    set_aside_copies,
    start_move,
    wait_for_move,
    wait_for_state,
)


def test_a_repository_moves_with_its_history_index_and_public_copy(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn) as (one, two, three):
        assert httpx.post(f"{one.url}/repos", json={"name": "course"}).status_code == 201
        source = next(n for n in (one, two, three) if n.name == owner_of(one.url, "course"))
        target = next(n for n in (one, two, three) if n is not source)
        via = next(n for n in (one, two, three) if n not in (source, target))
        for i in range(5):
            put = httpx.put(f"{via.url}/repos/course/entities/page-{i}", json=document(f"page {i}"))
            assert put.status_code in (200, 201), put.text
        assert httpx.post(f"{via.url}/repos/course/entities/page-0/publish").status_code == 200
        before = {
            path: httpx.get(f"{source.url}{path}").content
            for path in ("/repos/course/entities?state=draft", "/repos/course/entities", "/repos/course/publish-log")
        }

        asked = start_move(via.url, "course", target.name)
        assert asked.status_code == 202, asked.text
        assert asked.headers["location"] == f"/admin/cluster/moves/course?node={target.name}"
        status = wait_for_move(via.url, "course", target.name)

        assert status["state"] == "done", status
        assert status["source"] == source.name and status["target"] == target.name
        assert status["source_gave_up"] is True and status["source_unchanged"] is True
        assert owner_of(source.url, "course") == target.name
        for path, body in before.items():
            for node in (one, two, three):
                assert httpx.get(f"{node.url}{path}").content == body, (path, node.name)
        moved = target.data / "course.git"
        (aside,) = set_aside_copies(source, "course")
        assert not (source.data / "course.git").exists()
        refs = git(moved, "for-each-ref", "--format=%(objectname) %(refname)").stdout
        assert refs == git(aside, "for-each-ref", "--format=%(objectname) %(refname)").stdout
        # The new owner writes; the public copy is there for readers.
        assert httpx.put(f"{via.url}/repos/course/entities/page-9", json=document("after")).status_code == 201
        clone = tmp_path / "clone"
        done = git(clone, "clone", "-q", "--bare", f"{via.url}/git/live/course.git", str(clone))
        assert done.returncode == 0, done.stderr
        fsck(moved)
        fsck(aside)


def _wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


@pytest.mark.timeout(1200)
def test_a_10k_entity_repository_moves_while_four_writers_write_through_other_nodes(
    tmp_path: Path, cluster_dsn: str
) -> None:
    with seeded(tmp_path, cluster_dsn, "big", 10_000) as (one, two, three):
        assert owner_of(three.url, "big") == one.name  # adopted from its disk
        with Writers("big", [three.url, two.url]) as writers:
            _wait_until(lambda: len(writers.acknowledged) >= 40, 60, "writes before the move")
            asked = start_move(three.url, "big", two.name)
            assert asked.status_code == 202, asked.text
            status = wait_for_move(three.url, "big", two.name, timeout=900)
            assert status["state"] == "done", status
            flipped = status["flipped_at"]
            _wait_until(lambda: sum(w.sent > flipped for w in writers.acknowledged) >= 40, 60, "writes after the move")

        assert not writers.gave_up, writers.gave_up[:5]
        fenced = status["fenced_at"]
        moved, (aside,) = two.data / "big.git", set_aside_copies(one, "big")
        acknowledged = writers.acknowledged
        # No acknowledged write lost, nothing forked: each write's commit is on its entity's
        # history on the new owner, and each key's writes (one writer each) form one line.
        for write in acknowledged:
            assert write.etag and is_ancestor(moved, write.etag, f"refs/drafts/{write.key}"), write
        by_key: dict[str, list[str]] = {}
        for write in sorted(acknowledged, key=lambda w: w.answered):
            by_key.setdefault(write.key, []).append(write.etag or "")
        for key, etags in by_key.items():
            for older, newer in zip(etags, etags[1:], strict=False):
                assert is_ancestor(moved, older, newer), (key, older, newer)
        # No write accepted by the old owner after the fence: its copy still holds the sealed refs,
        # and no write first sent after the fence is on its history. (Its commit object may be
        # there: a try the old owner refused wrote it before its fencing check, and the same
        # change retried on the new owner within the second is the same commit.)
        assert status["source_unchanged"] is True
        late = [w for w in acknowledged if w.first_sent > fenced]
        assert late
        for write in late:
            assert not is_ancestor(aside, write.etag or "", f"refs/drafts/{write.key}"), write
        fsck(moved)
        fsck(aside)

        around = pauses(writers, fenced - 5, status["flipped_at"] + 5)
        print(
            f"\n10k move: copy rounds {[(r['refs_moved'], r['seconds']) for r in status['rounds']]},"
            f" fence to flip {status['pause_seconds']:.3f} s {status['steps']} (seal round {status['rounds'][-1]});"
            f" write latency around it p50 {percentile(around, 50):.3f} s, p99 {percentile(around, 99):.3f} s,"
            f" max {max(around):.3f} s; {len(acknowledged)} writes acknowledged"
        )


def _route(dsn: str, repo: str) -> tuple[str, str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select owner, state, epoch from repositories where name = %s", (repo,)).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_bad_requests_to_move_are_refused_and_change_nothing(tmp_path: Path, cluster_dsn: str) -> None:
    with seeded(tmp_path, cluster_dsn, "course", 300) as (one, two, three):
        before = _route(cluster_dsn, "course")
        cases = [
            ({"repository": "course", "node": "nowhere"}, 404, "unknown-node"),
            ({"repository": "course", "node": one.name}, 409, "move-to-owner"),
            ({"repository": "missing", "node": two.name}, 404, "repository-not-found"),
            ({"repository": "course"}, 422, "invalid-input"),
            ({"repository": "course", "node": two.name, "extra": 1}, 422, "invalid-input"),
        ]
        for body, status, kind in cases:
            answer = httpx.post(f"{three.url}/admin/cluster/moves", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].endswith(kind), answer.json()
        three.stop()  # a clean stop says it is down
        down = httpx.post(f"{two.url}/admin/cluster/moves", json={"repository": "course", "node": three.name})
        assert down.status_code == 409 and down.json()["type"].endswith("node-down"), down.text
        assert _route(cluster_dsn, "course") == before
        assert not list(two.data.glob(".moving-*"))

        first = start_move(two.url, "course", two.name)
        assert first.status_code == 202, first.text
        again = start_move(one.url, "course", two.name)
        assert again.status_code == 409 and again.json()["type"].endswith("move-in-progress"), again.text
        assert wait_for_move(one.url, "course", two.name)["state"] == "done"
        assert _route(cluster_dsn, "course")[0] == two.name
        gone = httpx.get(f"{one.url}/admin/cluster/moves/nothing", params={"node": two.name})
        assert gone.status_code == 404 and gone.json()["type"].endswith("no-such-move")


def test_a_drain_moves_everything_off_a_node(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn) as (one, two, three):
        for i in range(6):
            made = httpx.post(f"{two.url}/repos", json={"name": f"site-{i}"})
            assert made.status_code == 201, made.text
            put = httpx.put(f"{two.url}/repos/site-{i}/entities/home", json=document(f"home {i}"))
            assert put.status_code == 201, put.text
        owned = [r["name"] for r in httpx.get(f"{one.url}/repos").json()["items"] if r["owner"] == one.name]
        assert owned, "placement put nothing on node-1"

        asked = httpx.post(f"{three.url}/admin/cluster/drains", json={"node": one.name})
        assert asked.status_code == 202, asked.text
        assert asked.headers["location"] == f"/admin/cluster/drains/{one.name}"
        deadline = time.monotonic() + 300
        while (drain := httpx.get(f"{two.url}/admin/cluster/drains/{one.name}").json())["state"] == "draining":
            assert time.monotonic() < deadline, drain
            time.sleep(0.2)

        assert drain["state"] == "done", drain
        assert sorted(m["repository"] for m in drain["moves"]) == sorted(owned)
        assert all(m["state"] == "done" for m in drain["moves"]), drain["moves"]
        listing = httpx.get(f"{three.url}/repos").json()["items"]
        assert not [r for r in listing if r["owner"] == one.name]
        nodes = {n["name"]: n for n in httpx.get(f"{three.url}/admin/cluster/nodes").json()["items"]}
        assert nodes[one.name]["state"] == "draining" and nodes[one.name]["repositories"] == 0
        for i in range(6):
            read = httpx.get(f"{one.url}/repos/site-{i}/entities/home?state=draft")
            assert read.status_code == 200 and read.json()["title"] == f"home {i}"
        placed = httpx.post(f"{one.url}/repos", json={"name": "after-drain"})
        assert placed.status_code == 201
        assert owner_of(two.url, "after-drain") != one.name


@dataclass
class _Sent:
    sent: float
    answered: float
    status: int
    etag: str | None
    key: str


def _write_straight_to(
    url: str, repo: str, count: int, stop: threading.Event, log: list[_Sent], *, first: int = 0
) -> list[threading.Thread]:
    """`count` threads writing to one node, never retrying: every answer is logged as it came.
    Thread n (from `first`) writes keys p<n>-0 to p<n>-9."""

    def write(n: int) -> None:
        with httpx.Client(timeout=60) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                key, sent = f"p{n}-{i % 10}", time.time()
                try:
                    answer = client.put(f"{url}/repos/{repo}/entities/{key}", json=document(f"{n} {i}"))
                    status, etag = answer.status_code, answer.headers.get("etag")
                except httpx.TransportError:
                    status, etag = 0, None
                log.append(_Sent(sent, time.time(), status, etag.strip('"') if etag else None, key))
                if status != 201 and status != 200:
                    time.sleep(0.05)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(first, first + count)]
    for thread in threads:
        thread.start()
    return threads


@pytest.mark.timeout(600)
def test_an_owner_paused_while_fenced_fails_its_writes_in_flight_and_the_move_completes(
    tmp_path: Path, cluster_dsn: str
) -> None:
    with seeded(tmp_path, cluster_dsn, "course", 2000) as (one, two, three):
        log: list[_Sent] = []
        stop = threading.Event()
        writers = _write_straight_to(one.url, "course", 4, stop, log)
        try:
            # The test holds the repository's row, so the move's fence waits for it: the owner is
            # paused while the move waits there, and fenced while it sleeps.
            with psycopg.connect(cluster_dsn) as holder:
                asked = start_move(three.url, "course", two.name)
                assert asked.status_code == 202, asked.text
                wait_for_state(three.url, "course", two.name, ("copying",))
                _wait_until(lambda: len(_status(three.url, two.name)["rounds"]) >= 1, 120, "a first round")
                holder.execute("select 1 from repositories where name = 'course' for update")
                wait_for_state(three.url, "course", two.name, ("fencing",))
                one.pause()
                paused = time.time()
                # The four may all be past their fencing checks when the pause lands: this
                # writer's first write is surely sent while the owner sleeps.
                writers += _write_straight_to(one.url, "course", 1, stop, log, first=4)
                holder.commit()  # the fence goes through now, with the owner asleep
                status = wait_for_state(three.url, "course", two.name, ("sealing",), timeout=10)
                assert status["fenced_at"] > paused
                time.sleep(2.0)
            one.resume()
            resumed = time.time()
            status = wait_for_move(three.url, "course", two.name)
        finally:
            one.resume()
            stop.set()
            for thread in writers:
                thread.join(timeout=90)

        assert status["state"] == "done", status
        assert status["source_unchanged"] is True
        moved = two.data / "course.git"
        in_flight = [w for w in log if w.sent < paused and w.answered > resumed]
        sent_while_paused = [w for w in log if paused <= w.sent <= resumed]
        assert in_flight or sent_while_paused
        # Nothing the old owner answered after the fence succeeded, unless it passed its check
        # before the pause (then it is in the move, as every acknowledged write must be).
        for write in in_flight + sent_while_paused:
            assert not 200 <= write.status < 300 or is_ancestor(moved, write.etag or "", f"refs/drafts/{write.key}")
        for write in sent_while_paused:
            assert write.status == 503, write
        assert any(w.status == 503 for w in in_flight + sent_while_paused)
        for write in log:
            if 200 <= write.status < 300:
                assert write.etag and is_ancestor(moved, write.etag, f"refs/drafts/{write.key}"), write
        fsck(moved)
        fsck(set_aside_copies(one, "course")[0])
        print(
            f"\npaused owner: {len(in_flight)} writes in flight, {len(sent_while_paused)} sent while paused,"
            f" answers {sorted({w.status for w in in_flight + sent_while_paused})}; move {status['pause_seconds']:.3f} s"
        )


def _status(url: str, node: str) -> dict:
    return httpx.get(f"{url}/admin/cluster/moves/course", params={"node": node}).json()  # type: ignore[no-any-return]


def test_a_target_that_stops_or_dies_mid_move_leaves_the_repository_with_its_owner(
    tmp_path: Path, cluster_dsn: str
) -> None:
    with seeded(tmp_path, cluster_dsn, "course", 2000) as (one, two, three):
        # A clean stop undoes the move it runs.
        assert start_move(three.url, "course", two.name).status_code == 202
        two.stop()
        assert _route(cluster_dsn, "course")[:2] == (one.name, "active")
        status = orjson.loads((two.data / ".cluster-moves" / "course.json").read_bytes())
        assert status["state"] == "failed" and "stopping" in status["error"]
        assert not list(two.data.glob(".moving-*")) and not (two.data / "course.git").exists()

        # A kill leaves it moving (the owner still writes); the node undoes it when it is back.
        two.start()
        assert start_move(three.url, "course", two.name).status_code == 202
        two.kill()
        assert _route(cluster_dsn, "course")[:2] == (one.name, "moving")
        put = httpx.put(f"{three.url}/repos/course/entities/during", json=document("during"))
        assert put.status_code == 201, put.text
        two.start()
        assert _route(cluster_dsn, "course")[:2] == (one.name, "active")
        assert not list(two.data.glob(".moving-*"))
        assert start_move(three.url, "course", two.name).status_code == 202
        assert wait_for_move(three.url, "course", two.name)["state"] == "done"
        read = httpx.get(f"{one.url}/repos/course/entities/during?state=draft")
        assert read.status_code == 200 and read.json()["title"] == "during"

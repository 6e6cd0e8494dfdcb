"""Moving repositories between real nodes (tests/cluster/nodes.py) on one real PostgreSQL:
what moves with a repository, bad requests to move, and draining a node."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
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
    seed_on_disk,
    set_aside_copies,
    start_move,
    wait_for_move,
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
    with cluster(tmp_path, cluster_dsn, before_start=lambda made: seed_on_disk(made[0].data, "big", 10_000)) as (
        one,
        two,
        three,
    ):
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

"""Replicas and failover with real nodes on one real PostgreSQL (issue 24, ADR 0016)."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from gitstore.cluster.replica_set import FAILOVER_SECONDS
from tests.cluster.moving import cluster, document, fsck, git, is_ancestor, owner_of
from tests.cluster.nodes import Node
from tests.cluster.replicating import (
    Spread,
    check_acknowledged,
    copy_path,
    head,
    in_sync,
    owner_now,
    replicas,
    replicated,
    same_refs,
    wait_in_sync,
    wait_owner,
)


def test_more_copies_than_active_nodes_is_refused_and_nothing_is_created(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn, count=2) as made:
        asked = httpx.post(f"{made[1].url}/repos", json={"name": "course", "replication_factor": 3})
        assert asked.status_code == 422, asked.text
        assert asked.headers["content-type"] == "application/problem+json"
        assert asked.json()["type"].endswith("replication-factor-too-high")
        assert "2 active node" in asked.json()["detail"]
        assert httpx.get(f"{made[0].url}/repos").json()["items"] == []
        assert not any((n.data / "course.git").exists() for n in made)
        # The default (2) fits; a factor of 1 keeps one copy.
        assert httpx.post(f"{made[0].url}/repos", json={"name": "single", "replication_factor": 1}).status_code == 201
        assert replicas(cluster_dsn, "single") == {}


def test_a_replica_that_missed_a_write_is_never_promoted(tmp_path: Path, cluster_dsn: str) -> None:
    """GitLab Praefect's MR 3689: a replica out of date was promoted and acknowledged writes were
    lost. Here the replica that missed writes left the in-sync set before they were acknowledged,
    so with every in-sync copy down the repository waits (503) instead of going back in time."""
    with cluster(tmp_path, cluster_dsn) as made:
        created = httpx.post(f"{made[0].url}/repos", json={"name": "course", "replication_factor": 3})
        assert created.status_code == 201, created.text
        wait_in_sync(cluster_dsn, "course", 2)
        owner = owner_now(made, "course")
        behind, other = (n for n in made if n is not owner)
        behind.pause()  # it misses what follows
        try:
            acknowledged = {}
            for i in range(4):
                put = httpx.put(f"{owner.url}/repos/course/entities/page-{i}", json=document(f"page {i}"), timeout=30)
                assert put.status_code in (200, 201), put.text
                acknowledged[f"page-{i}"] = put.headers["etag"].strip('"')
            assert in_sync(cluster_dsn, "course") == {other.name}
            other.kill()
            owner.kill()
        finally:
            behind.resume()
        time.sleep(FAILOVER_SECONDS + 2.5)  # time enough for any promotion (the watcher looks every second)
        assert owner_of(behind.url, "course") == owner.name  # nobody was promoted
        refused = httpx.put(f"{behind.url}/repos/course/entities/page-0", json=document("late"), timeout=30)
        assert refused.status_code == 503, refused.text
        assert not head(copy_path(behind, "course"), "refs/drafts/page-3").startswith(acknowledged["page-3"])
        # Nor by an operator: a promotion asked for is refused, and changes nothing.
        asked = httpx.post(
            f"{behind.url}/admin/cluster/promotions", json={"repository": "course", "node": behind.name}, timeout=30
        )
        assert asked.status_code == 409, asked.text
        assert asked.json()["type"].endswith(":replica-behind") and behind.name in asked.json()["detail"]
        assert owner_of(behind.url, "course") == owner.name

        other.start()  # the in-sync replica comes back: it is promoted, with every acknowledged write
        assert wait_owner(behind.url, "course", not_=owner.name) == other.name
        for key, etag in acknowledged.items():
            assert is_ancestor(other.data / "course.git", etag, f"refs/drafts/{key}"), key
        fsck(other.data / "course.git")


def test_an_operator_promotes_an_in_sync_replica_under_writers_and_the_old_owner_follows_it(
    tmp_path: Path, cluster_dsn: str
) -> None:
    """A switchover (before maintenance of the owner): the same promotion as a failover's, asked
    of any node, with writers going on through every node."""
    with cluster(tmp_path, cluster_dsn) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        third = next(n for n in made if n not in (replica, owner))
        for node, why in ((third.name, ":not-a-replica"), (owner.name, ":not-a-replica"), ("nowhere", ":unknown-node")):
            refused = httpx.post(f"{owner.url}/admin/cluster/promotions", json={"repository": "course", "node": node})
            assert refused.status_code in (404, 409) and refused.json()["type"].endswith(why), (node, refused.text)
        with Spread("course", [n.url for n in made]) as writers:
            time.sleep(0.5)
            for _ in range(20):  # a replica the load left behind is refused until it has caught up
                wait_in_sync(cluster_dsn, "course")
                promoted = httpx.post(
                    f"{third.url}/admin/cluster/promotions",
                    json={"repository": "course", "node": replica.name},
                    timeout=60,
                )
                if promoted.status_code != 409 or not promoted.json()["type"].endswith(":replica-behind"):
                    break
            assert promoted.status_code == 200, promoted.text
            assert promoted.json()["owner"] == replica.name and promoted.json()["epoch"] >= 2
            assert wait_in_sync(cluster_dsn, "course") == {owner.name}  # the old owner, caught up as a replica
            time.sleep(0.5)
        assert owner_now(made, "course") is replica
        assert not writers.gave_up, writers.gave_up[:3]
        assert writers.acknowledged
        check_acknowledged(writers, replica.data / "course.git")
        same_refs(replica.data / "course.git", copy_path(owner, "course"))


def test_a_replica_node_gone_for_good_is_replaced_and_the_repository_is_on_two_disks_again(
    tmp_path: Path, cluster_dsn: str
) -> None:
    def soon_lost(made: list[Node]) -> None:
        for node in made:
            node.env["GITSTORE_REPLICA_LOST_SECONDS"] = "3"

    with cluster(tmp_path, cluster_dsn, before_start=soon_lost) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        spare = next(n for n in made if n not in (replica, owner))
        replica.kill()
        acknowledged = {}
        for i in range(3):  # the first write takes the silent replica out of the in-sync set
            put = httpx.put(f"{owner.url}/repos/course/entities/page-{i}", json=document(f"page {i}"), timeout=30)
            assert put.status_code in (200, 201), put.text
            acknowledged[f"page-{i}"] = put.headers["etag"].strip('"')
        assert wait_in_sync(cluster_dsn, "course") == {spare.name}
        assert replicas(cluster_dsn, "course") == {spare.name: True}  # the lost one's place is given up
        for key, etag in acknowledged.items():
            assert is_ancestor(copy_path(spare, "course"), etag, f"refs/drafts/{key}"), key
        same_refs(owner.data / "course.git", copy_path(spare, "course"))
        # Back after losing its place, the node removes the copy nothing will read again.
        stale = copy_path(replica, "course")
        assert stale.is_dir()
        replica.start()
        deadline = time.monotonic() + 30
        while stale.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stale.exists()
        assert replicas(cluster_dsn, "course") == {spare.name: True}


def test_a_replica_killed_mid_stream_returns_and_catches_up(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        with Spread("course", [n.url for n in made if n is not replica]) as writers:
            time.sleep(1.0)
            replica.kill()
            time.sleep(1.0)
            assert replica.name not in in_sync(cluster_dsn, "course")  # dropped, writes went on
            replica.start()
            wait_in_sync(cluster_dsn, "course")
            time.sleep(0.5)
        assert not writers.gave_up, writers.gave_up[:3]
        check_acknowledged(writers, owner.data / "course.git")
        same_refs(owner.data / "course.git", copy_path(replica, "course"))
        check_acknowledged(writers, copy_path(replica, "course"))


def test_a_replica_whose_disk_is_full_leaves_the_in_sync_set_before_a_write_it_lacks_is_acknowledged(
    tmp_path: Path, cluster_dsn: str
) -> None:
    with cluster(tmp_path, cluster_dsn) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        journal = copy_path(replica, "course") / "journal" / "log"
        limit = (journal.stat().st_size if journal.exists() else 0) + 6000
        assert replica.proc is not None
        # A real OS limit: every file the replica writes past it fails with EFBIG, as on a full disk.
        resource.prlimit(replica.proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        acknowledged, missed = [], []
        for i in range(12):
            key = f"page-{i % 4}"
            put = httpx.put(f"{owner.url}/repos/course/entities/{key}", json=document(f"v{i}"), timeout=30)
            assert put.status_code in (200, 201), put.text
            etag = put.headers["etag"].strip('"')
            acknowledged.append((key, etag))
            # Asked in this order: a replica in sync after the acknowledgement must hold the write.
            still_in_sync = replica.name in in_sync(cluster_dsn, "course")
            on_replica = is_ancestor(copy_path(replica, "course"), etag, f"refs/drafts/{key}")
            assert on_replica or not still_in_sync, (i, etag)
            if not on_replica:
                missed.append(etag)
        assert missed, "the replica never ran out of room"
        for key, etag in acknowledged:
            assert is_ancestor(owner.data / "course.git", etag, f"refs/drafts/{key}"), (key, etag)
        fsck(owner.data / "course.git")


def test_an_in_sync_replica_holds_each_acknowledged_write_and_answers_live_reads_no_older_than_seen(
    tmp_path: Path, cluster_dsn: str
) -> None:
    with cluster(tmp_path, cluster_dsn) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        for i in range(5):  # each write is on the replica once it is acknowledged
            put = httpx.put(f"{made[0].url}/repos/course/entities/page-{i}", json=document(f"page {i}"))
            assert put.status_code == 201, put.text
            assert head(copy_path(replica, "course"), f"refs/drafts/page-{i}") == put.headers["etag"].strip('"')
        assert replicas(cluster_dsn, "course") == {replica.name: True}
        assert httpx.put(f"{owner.url}/repos/course/entities/page", json=document("v1")).status_code == 201
        assert httpx.post(f"{owner.url}/repos/course/entities/page/publish").status_code == 200
        live = httpx.get(f"{owner.url}/repos/course/entities/page")
        seen = live.headers["etag"]

        read = httpx.get(f"{replica.url}/repos/course/entities/page", headers={"Gitstore-Seen": seen})
        assert read.status_code == 200 and read.headers["gitstore-replica"] == replica.name
        assert read.headers["etag"] == seen and read.json() == live.json()
        # Drafts are the owner's to answer.
        draft = httpx.get(f"{replica.url}/repos/course/entities/page", params={"state": "draft"})
        assert draft.status_code == 200 and "gitstore-replica" not in draft.headers
        # The public copy is cloned from the replica, the same commits as the owner's; the full
        # repository (drafts) is the owner's.
        refs = httpx.get(f"{replica.url}/git/live/course.git/info/refs", params={"service": "git-upload-pack"})
        assert refs.status_code == 200 and refs.headers["gitstore-replica"] == replica.name
        full = httpx.get(f"{replica.url}/git/course.git/info/refs", params={"service": "git-upload-pack"})
        assert full.status_code == 200 and "gitstore-replica" not in full.headers
        clones = {}
        for node in (replica, owner):
            into = tmp_path / f"live-from-{node.name}"
            done = run(["git", "clone", "-q", "--bare", f"{node.url}/git/live/course.git", str(into)])
            assert done.returncode == 0, done.stderr
            clones[node.name] = git(into, "for-each-ref").stdout
        assert clones[replica.name] == clones[owner.name] and "refs/heads/main" in clones[owner.name]
        assert (copy_path(replica, "course") / "gitstore" / "live.git").is_dir()

        # A head this replica does not hold: it waits for it, then the owner answers.
        started = time.monotonic()
        newer = httpx.get(f"{replica.url}/repos/course/entities/page", headers={"Gitstore-Seen": "ab" * 20})
        assert newer.status_code == 200 and "gitstore-replica" not in newer.headers
        assert time.monotonic() - started >= 0.9


def test_with_a_minimum_of_two_copies_a_write_no_replica_takes_is_refused_not_acknowledged(
    tmp_path: Path, cluster_dsn: str
) -> None:
    def at_least_two(made: list[Node]) -> None:
        for node in made:
            node.env["GITSTORE_MIN_IN_SYNC"] = "2"

    with cluster(tmp_path, cluster_dsn, before_start=at_least_two) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        first = httpx.put(f"{owner.url}/repos/course/entities/page", json=document("v1"))
        assert first.status_code == 201, first.text
        replica.kill()
        refused = httpx.put(f"{owner.url}/repos/course/entities/page", json=document("v2"), timeout=30)
        assert refused.status_code == 503 and refused.json()["type"].endswith("replication-failed"), refused.text
        assert refused.headers["retry-after"]
        # Nothing moved: the entity is where the acknowledged write left it.
        assert head(owner.data / "course.git", "refs/drafts/page") == first.headers["etag"].strip('"')

        replica.start()
        wait_in_sync(cluster_dsn, "course")
        again = httpx.put(f"{owner.url}/repos/course/entities/page", json=document("v2"), timeout=30)
        assert again.status_code == 200, again.text
        assert head(copy_path(replica, "course"), "refs/drafts/page") == again.headers["etag"].strip('"')


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)

"""The control plane against a real PostgreSQL: migrations, nodes, placement, moves' states."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter

import pytest

from gitstore.cluster.api import MIGRATIONS, ControlPlane, migrate
from gitstore.errors import (
    ControlPlaneUnavailable,
    MoveInProgress,
    MoveToOwner,
    NodeDown,
    NodeNameClash,
    NoNodeAvailable,
    NotOwner,
    RepositoryExists,
    UnknownNode,
)
from tests.cluster.postgres import BIN
from tests.serving import free_port


def _psql(dsn: str, sql: str) -> str:
    done = subprocess.run([str(BIN / "psql"), dsn, "-Atc", sql], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _planes(dsn: str, count: int) -> list[ControlPlane]:
    """`count` control planes joined as node-1..node-count (each its own incarnation)."""
    planes = [ControlPlane(dsn) for _ in range(count)]
    for i, plane in enumerate(planes, 1):
        plane.join(f"node-{i}", f"http://127.0.0.1:{9000 + i}")
    return planes


def test_migrations_apply_once_however_often_nodes_start(cluster_dsn: str) -> None:
    first = ControlPlane(cluster_dsn)
    second = ControlPlane(cluster_dsn)
    assert _psql(cluster_dsn, "select count(*) from schema_migrations") == str(len(MIGRATIONS))  # each once
    assert first.secret() == second.secret() and len(first.secret()) == 32
    with first.connect() as conn:
        assert migrate(conn) == []  # nothing left to apply
    first.close()
    second.close()


def test_nodes_starting_at_once_apply_the_migrations_once(cluster_dsn: str) -> None:
    made: list[ControlPlane] = []
    failed: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait(timeout=10)
        try:
            made.append(ControlPlane(cluster_dsn))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            failed.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failed and len(made) == 4
    applied = _psql(cluster_dsn, "select string_agg(version::text, ',' order by version) from schema_migrations")
    assert applied == ",".join(str(version) for version, _ in MIGRATIONS)  # each once
    assert len({plane.secret() for plane in made}) == 1
    for plane in made:
        plane.close()


def test_placement_spreads_repositories_over_the_least_loaded_nodes(cluster_dsn: str) -> None:
    planes = _planes(cluster_dsn, 3)
    owners = Counter(planes[i % 3].place(f"repo-{i:02}").owner for i in range(30))
    assert owners == {"node-1": 10, "node-2": 10, "node-3": 10}
    route = planes[0].route("repo-07")
    assert route is not None and route.epoch == 1 and route.state == "active" and route.owner_alive
    assert route.owner_url == f"http://127.0.0.1:{9000 + int(route.owner[-1])}"
    with pytest.raises(RepositoryExists):
        planes[1].place("repo-07")
    assert len(planes[2].routes()) == 30
    for plane in planes:
        plane.close()


def test_placement_skips_draining_down_and_silent_nodes(cluster_dsn: str) -> None:
    planes = _planes(cluster_dsn, 3)
    planes[0].set_node_state("node-1", "draining")
    planes[1].leave("node-2")  # a clean stop: down
    assert {planes[0].place(f"r{i}").owner for i in range(3)} == {"node-3"}
    _psql(cluster_dsn, "update nodes set heartbeat_at = now() - interval '1 minute' where name = 'node-3'")
    with pytest.raises(NoNodeAvailable):
        planes[0].place("nowhere")
    assert [n.alive for n in planes[0].nodes()] == [True, False, False]
    for plane in planes:
        plane.close()


def test_a_node_name_held_by_a_live_process_is_refused(cluster_dsn: str) -> None:
    first, second = ControlPlane(cluster_dsn), ControlPlane(cluster_dsn)
    first.join("node-1", "http://127.0.0.1:9001")
    with pytest.raises(NodeNameClash, match="node-1"):
        second.join("node-1", "http://127.0.0.1:9002")
    first.leave("node-1")  # once it stopped, the name is free again
    second.join("node-1", "http://127.0.0.1:9002")
    with pytest.raises(NodeNameClash):
        first.heartbeat("node-1")  # the old incarnation learns it lost the name
    second.heartbeat("node-1")
    first.close()
    second.close()


def test_an_unreachable_control_plane_is_refused_naming_host_and_port_never_the_password() -> None:
    port = free_port()
    with pytest.raises(ControlPlaneUnavailable) as refused:
        ControlPlane(f"postgresql://gitstore:s3cret-pw@127.0.0.1:{port}/gitstore", connect_timeout=2)
    assert f"127.0.0.1:{port}" in refused.value.detail
    assert "s3cret-pw" not in refused.value.detail and "s3cret-pw" not in str(refused.value)


def test_check_owner_follows_owner_epoch_and_state(cluster_dsn: str) -> None:
    one, two = _planes(cluster_dsn, 2)
    route = one.place("books")
    owner, other = ("node-1", "node-2") if route.owner == "node-1" else ("node-2", "node-1")
    one.check_owner("books", owner, 1)
    with pytest.raises(NotOwner, match="books"):
        one.check_owner("books", other, 1)
    with pytest.raises(NotOwner):
        one.check_owner("books", owner, 2)
    with pytest.raises(MoveToOwner):
        one.begin_move("books", owner)
    with pytest.raises(UnknownNode):
        one.begin_move("books", "node-9")
    one.begin_move("books", other)
    one.check_owner("books", owner, 1)  # writes go on while it is copied
    with pytest.raises(MoveInProgress):
        one.begin_move("books", other)
    epoch = one.fence("books")
    assert epoch == 2
    with pytest.raises(NotOwner):
        one.check_owner("books", owner, 1)
    moved = one.finish_move("books", other, epoch)
    assert (moved.owner, moved.epoch, moved.state, moved.move_target) == (other, 2, "active", None)
    one.check_owner("books", other, 2)
    with pytest.raises(NotOwner):
        one.check_owner("books", owner, 2)
    one.close()
    two.close()


def test_an_aborted_move_leaves_the_owner_with_the_bumped_epoch(cluster_dsn: str) -> None:
    one, two = _planes(cluster_dsn, 2)
    route = one.place("books")
    other = "node-2" if route.owner == "node-1" else "node-1"
    one.begin_move("books", other)
    one.fence("books")
    back = one.abort_move("books")
    assert (back.owner, back.epoch, back.state) == (route.owner, 2, "active")
    two.leave("node-2")
    one.leave("node-1")
    with pytest.raises(NodeDown):
        one.begin_move("books", other)
    one.close()
    two.close()

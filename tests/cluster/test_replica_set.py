"""The replicas' rows in the control plane (issue 24, ADR 0016), on a real PostgreSQL: placement on
distinct nodes, the in-sync set changed only by its owner at its epoch, and promotion of in-sync
replicas only (GitLab Praefect's MR 3689)."""

from __future__ import annotations

import pytest

from gitstore.cluster.api import ControlPlane
from gitstore.cluster.replica_set import (
    drop_from_in_sync,
    join_in_sync,
    place_replicas,
    promote,
    replica_duties,
    replicas_of,
)
from gitstore.errors import ReplicaBehind, ReplicationFactorTooHigh, ReplicationFailed


def _three(dsn: str) -> ControlPlane:
    plane = ControlPlane(dsn)
    for name in ("node-1", "node-2", "node-3"):
        plane.join(name, f"http://{name}")
    return plane


def test_replicas_go_to_distinct_nodes_and_a_factor_above_the_nodes_is_refused(cluster_dsn: str) -> None:
    plane = _three(cluster_dsn)
    owner = plane.place("course").owner
    with pytest.raises(ReplicationFactorTooHigh):
        place_replicas(plane, "course", 4, strict=True)
    assert replicas_of(plane, "course") == {}  # nothing placed
    added = place_replicas(plane, "course", 3, strict=True)
    assert sorted(added) == sorted({"node-1", "node-2", "node-3"} - {owner})
    assert replicas_of(plane, "course") == dict.fromkeys(added, False)
    assert place_replicas(plane, "course") == []  # already as many as its factor asks
    plane.close()


def test_only_the_owner_at_its_epoch_changes_the_in_sync_set(cluster_dsn: str) -> None:
    plane = _three(cluster_dsn)
    owner = plane.place("course").owner
    (replica,) = place_replicas(plane, "course", 2)
    assert not join_in_sync(plane, "course", replica, 1, replica)  # not the owner
    assert not join_in_sync(plane, "course", owner, 2, replica)  # not its epoch
    assert join_in_sync(plane, "course", owner, 1, replica)
    with pytest.raises(ReplicationFailed):
        drop_from_in_sync(plane, "course", owner, 2, [replica])
    assert replicas_of(plane, "course") == {replica: True}
    drop_from_in_sync(plane, "course", owner, 1, [replica])
    assert replicas_of(plane, "course") == {replica: False}
    plane.close()


def test_a_replica_out_of_sync_is_never_promoted_and_an_in_sync_one_only_over_a_silent_owner(
    cluster_dsn: str,
) -> None:
    plane = _three(cluster_dsn)
    owner = plane.place("course").owner
    behind, in_sync = place_replicas(plane, "course", 3)
    assert join_in_sync(plane, "course", owner, 1, in_sync)
    with pytest.raises(ReplicaBehind):
        promote(plane, "course", behind, 1, forced=True)
    assert promote(plane, "course", in_sync, 1) is None  # the owner sends its heartbeat
    assert promote(plane, "course", in_sync, 2, forced=True) is None  # not the epoch it holds
    assert promote(plane, "course", in_sync, 1, forced=True) == 2
    route = plane.route("course")
    assert route is not None and (route.owner, route.epoch) == (in_sync, 2)
    assert replicas_of(plane, "course") == {behind: False, owner: False}
    assert [(d.repo, d.owner, d.in_sync) for d in replica_duties(plane, owner)] == [("course", in_sync, False)]
    plane.close()


def test_a_replica_dropped_while_its_promotion_waits_for_the_row_is_not_promoted(cluster_dsn: str) -> None:
    """The owner drops a replica from the in-sync set (and goes on to acknowledge a round that
    replica lacks) while an operator's promotion of it waits for the repository's row: the
    promotion must see the drop once it has the row, not the in-sync set as it was when its
    statement began (READ COMMITTED takes a statement's snapshot before it waits for a lock)."""
    import threading

    import psycopg

    plane = _three(cluster_dsn)
    owner = plane.place("course").owner
    (replica,) = place_replicas(plane, "course", 2)
    assert join_in_sync(plane, "course", owner, 1, replica)
    outcome: list[object] = []

    def promotion() -> None:
        try:
            outcome.append(promote(plane, "course", replica, 1, forced=True))
        except ReplicaBehind as exc:
            outcome.append(exc)

    with psycopg.connect(cluster_dsn) as dropping:
        # drop_from_in_sync's transaction, held open at its last step.
        dropping.execute("select 1 from repositories where name = 'course' and epoch = 1 for update")
        dropping.execute(
            "update repository_replicas set in_sync = false where repository = 'course' and node = %s", (replica,)
        )
        waiting = threading.Thread(target=promotion)
        waiting.start()
        with psycopg.connect(cluster_dsn, autocommit=True) as watching:
            for _ in range(200):  # until the promotion waits for the row (at most 10 s)
                blocked = watching.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%%for update%%'"
                ).fetchone()
                if blocked and blocked[0]:
                    break
                waiting.join(0.05)
            assert blocked and blocked[0], "the promotion never waited for the repository's row"
        dropping.commit()
    waiting.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], ReplicaBehind), outcome
    route = plane.route("course")
    assert route is not None and (route.owner, route.epoch) == (owner, 1)
    plane.close()

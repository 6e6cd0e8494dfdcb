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

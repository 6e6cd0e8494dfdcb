"""The control plane in a node's backup (issue 24: restore a whole cluster), on a real PostgreSQL:
`gitstore backup` on a cluster node keeps placement, epochs, replicas, the cluster's secret and
its credentials; `gitstore restore` brings them back into an empty control plane, never rolls
back the same cluster's, and replaces another cluster's only with --force."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from gitstore.backup.api import open_target, restore, take_backup
from gitstore.cluster.api import ClusterCredentials, ClusterPart, ControlPlane
from gitstore.cluster.replica_set import join_in_sync, place_replicas, replicas_of
from gitstore.errors import AlreadyExists
from gitstore.store import Store
from tests.cluster.moving import cluster, document, git
from tests.cluster.nodes import Node
from tests.cluster.postgres import Postgres
from tests.cluster.replicating import by_name, copy_path, owner_now, replicated, same_refs, wait_in_sync
from tests.serving import ROOT


def _gitstore(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitstore.cli", *args],
        cwd=ROOT,
        env=os.environ | {"GITSTORE_CLUSTER_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _a_cluster(dsn: str) -> tuple[ControlPlane, str]:
    """Three nodes, two repositories with an in-sync replica each (one of them moving), and a
    token; the token's secret."""
    plane = ControlPlane(dsn)
    for name in ("node-1", "node-2", "node-3"):
        plane.join(name, f"http://{name}:8000")
    for repo in ("course", "guide"):
        owner = plane.place(repo, f"the {repo}").owner
        (replica,) = place_replicas(plane, repo, 2)
        assert join_in_sync(plane, repo, owner, 1, replica)
    route = plane.route("guide")
    assert route is not None
    plane.begin_move("guide", next(n for n in ("node-1", "node-2", "node-3") if n != route.owner))
    token = ClusterCredentials(plane).create_token("Ada", "ada@example.org", {"*": ["read", "write"]})
    return plane, token.secret


def test_a_whole_cluster_comes_back_into_a_fresh_postgresql(
    tmp_path: Path, postgres: Postgres, cluster_dsn: str
) -> None:
    plane, secret = _a_cluster(cluster_dsn)
    before = {r.repo: (r.owner, r.epoch) for r in plane.routes()}
    backed_up = _gitstore(cluster_dsn, "backup", str(tmp_path / "backups"), "--data", str(tmp_path / "node-1"))
    assert backed_up.returncode == 0, backed_up.stderr
    assert "cluster: kept" in backed_up.stdout
    (kept,) = (tmp_path / "backups").rglob("cluster-*.json")
    assert kept.stat().st_mode & 0o777 == 0o600  # the cluster's secret and signing key are in it

    fresh = postgres.create_database("restored_cluster")
    restored = _gitstore(fresh, "restore", str(tmp_path / "backups"), "--data", str(tmp_path / "node-1-again"))
    assert restored.returncode == 0, restored.stderr
    assert "cluster: restored" in restored.stdout
    back = ControlPlane(fresh)
    assert {r.repo: (r.owner, r.epoch) for r in back.routes()} == before
    assert back.secret() == plane.secret()  # the nodes sign with it: they know each other again
    assert {r.state for r in back.routes()} == {"active"}  # the move under way is forgotten
    # Node backups are taken at different moments: every replica catches up before it counts.
    for repo in ("course", "guide"):
        assert replicas_of(back, repo) == dict.fromkeys(replicas_of(plane, repo), False)
    principal = ClusterCredentials(back).authenticate_token(secret)
    assert principal is not None and principal.name == "Ada"

    # Another node's restore finds its cluster there and rolls nothing back, --force or not.
    back.place("made-since")
    for extra in ((), ("--force",)):
        again = _gitstore(
            fresh, "restore", str(tmp_path / "backups"), "--data", str(tmp_path / f"node-2{extra}"), *extra
        )
        assert again.returncode == 0, again.stderr
        assert "made-since" in {r.repo for r in back.routes()}
    back.close()
    plane.close()


def test_another_clusters_control_plane_is_replaced_only_with_force(
    tmp_path: Path, postgres: Postgres, cluster_dsn: str
) -> None:
    plane, _ = _a_cluster(cluster_dsn)
    target = open_target(str(tmp_path / "backups"))
    take_backup(Store(tmp_path / "data"), target, parts=[ClusterPart(plane)])
    other = ControlPlane(postgres.create_database("other_cluster"))
    other.join("elsewhere", "http://elsewhere:8000")
    other.place("theirs")
    with pytest.raises(AlreadyExists, match="another cluster"):
        restore(target, tmp_path / "restored", parts=[ClusterPart(other)])
    assert [r.repo for r in other.routes()] == ["theirs"]  # nothing changed
    restore(target, tmp_path / "restored", parts=[ClusterPart(other)], force=True)
    assert sorted(r.repo for r in other.routes()) == ["course", "guide"]
    other.close()
    plane.close()


def test_a_cluster_restored_from_its_nodes_backups_serves_what_it_held(
    tmp_path: Path, postgres: Postgres, cluster_dsn: str
) -> None:
    """The README's procedure, whole: each node backed up while it serves; a fresh PostgreSQL;
    each node restored from its own backup into a new data directory; the nodes started."""
    with cluster(tmp_path / "before", cluster_dsn) as made:
        replica, owner = replicated(made, cluster_dsn, "course")
        for i in range(5):
            put = httpx.put(f"{made[i % 3].url}/repos/course/entities/page-{i}", json=document(f"page {i}"), timeout=30)
            assert put.status_code in (200, 201), put.text
        assert httpx.post(f"{made[0].url}/repos/course/entities/page-0/publish", timeout=30).status_code == 200
        same_refs(owner.data / "course.git", copy_path(replica, "course"))
        for node in made:
            kept = _gitstore(cluster_dsn, "backup", str(tmp_path / f"backup-{node.name}"), "--data", str(node.data))
            assert kept.returncode == 0, kept.stderr
        refs = git(owner.data / "course.git", "show-ref").stdout

    fresh = postgres.create_database("restored_whole")

    def restored(again: list[Node]) -> None:
        for node in again:
            done = _gitstore(fresh, "restore", str(tmp_path / f"backup-{node.name}"), "--data", str(node.data))
            assert done.returncode == 0, done.stderr

    with cluster(tmp_path / "after", fresh, before_start=restored) as again:
        assert wait_in_sync(fresh, "course") == {replica.name}  # caught up from the owner again
        assert owner_now(again, "course").name == owner.name
        assert git(by_name(again, owner.name).data / "course.git", "show-ref").stdout == refs
        for node in again:  # every node answers, drafts and the live site alike
            draft = httpx.get(f"{node.url}/repos/course/entities/page-4", params={"state": "draft"}, timeout=30)
            assert draft.status_code == 200 and draft.json()["title"] == "page 4", draft.text
            live = httpx.get(f"{node.url}/repos/course/entities/page-0", timeout=30)
            assert live.status_code == 200 and live.json()["title"] == "page 0", live.text
        write = httpx.put(f"{again[2].url}/repos/course/entities/page-9", json=document("after"), timeout=30)
        assert write.status_code == 201, write.text

"""Replicas and failover with real nodes on one real PostgreSQL (issue 24, ADR 0016)."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx

from tests.cluster.moving import cluster, document, owner_of
from tests.cluster.replicating import (
    by_name,
    copy_path,
    head,
    replicas,
    wait_in_sync,
)


def test_a_write_is_on_the_in_sync_replica_before_it_is_acknowledged(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn) as made:
        one = made[0]
        assert httpx.post(f"{one.url}/repos", json={"name": "course"}).status_code == 201
        owner = by_name(made, owner_of(one.url, "course"))
        (replica,) = (by_name(made, n) for n in wait_in_sync(cluster_dsn, "course"))
        assert replica is not owner
        for i in range(5):
            put = httpx.put(f"{one.url}/repos/course/entities/page-{i}", json=document(f"page {i}"))
            assert put.status_code in (200, 201), put.text
            etag = put.headers["etag"].strip('"')
            assert head(copy_path(replica, "course"), f"refs/drafts/page-{i}") == etag
        assert replicas(cluster_dsn, "course") == {replica.name: True}

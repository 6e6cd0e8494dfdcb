"""Real node processes (tests/cluster/nodes.py) on one real PostgreSQL: starting together, name
clashes, an unreachable control plane, tokens shared by every node."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from gitstore.cluster.api import MIGRATIONS
from tests.cluster.nodes import Node, nodes
from tests.cluster.postgres import BIN
from tests.cluster.single import node_with_repository
from tests.serving import ROOT, free_port


def _psql(dsn: str, sql: str) -> str:
    done = subprocess.run([str(BIN / "psql"), dsn, "-Atc", sql], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _start_all(started: list[Node]) -> None:
    """Start every node at once (each waits for its /health), as a cluster's nodes boot together."""
    failed: list[BaseException] = []

    def start(node: Node) -> None:
        try:
            node.start()
        except BaseException as exc:  # noqa: BLE001 (reported below)
            failed.append(exc)

    threads = [threading.Thread(target=start, args=(node,)) for node in started]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failed, failed


@pytest.fixture
def three(tmp_path: Path, cluster_dsn: str) -> Iterator[list[Node]]:
    made = nodes(tmp_path, cluster_dsn, 3)
    try:
        _start_all(made)
        yield made
    finally:
        for node in made:
            node.stop()


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"GITSTORE_CLUSTER_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "gitstore.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_three_nodes_starting_at_once_share_one_schema_and_see_each_other(three: list[Node], cluster_dsn: str) -> None:
    assert _psql(cluster_dsn, "select count(*) from schema_migrations") == str(len(MIGRATIONS))  # each once
    alive = _psql(
        cluster_dsn,
        "select string_agg(name, ',' order by name) from nodes "
        "where state = 'active' and heartbeat_at > now() - interval '5 seconds'",
    )
    assert alive == "node-1,node-2,node-3"


def test_a_second_process_with_a_live_nodes_name_does_not_start(tmp_path: Path, cluster_dsn: str) -> None:
    (first,) = nodes(tmp_path / "a", cluster_dsn, 1)
    first.start()
    try:
        clash = Node("node-1", tmp_path / "b", free_port(), cluster_dsn)
        clash.data.mkdir(parents=True)
        with pytest.raises(RuntimeError, match="node name 'node-1' is held by another live process"):
            clash.start()
        assert httpx.get(first.url + "/health", timeout=5).status_code == 200  # the first serves on
        assert _psql(cluster_dsn, "select url from nodes where name = 'node-1'") == first.url
    finally:
        first.stop()


def test_a_node_killed_and_restarted_at_once_takes_its_name_back(tmp_path: Path, cluster_dsn: str) -> None:
    (node,) = nodes(tmp_path, cluster_dsn, 1)
    node.start()
    httpx.post(node.url + "/repos", json={"name": "books"}, timeout=10).raise_for_status()
    node.kill()  # its heartbeat is still fresh: the restart waits it out instead of refusing
    node.start()
    try:
        assert httpx.get(node.url + "/repos/books", timeout=10).status_code == 200
    finally:
        node.stop()


def test_a_node_whose_control_plane_cannot_be_reached_does_not_start(tmp_path: Path) -> None:
    port = free_port()
    node = Node("node-1", tmp_path / "data", free_port(), f"postgresql://gitstore:s3cret-pw@127.0.0.1:{port}/gitstore")
    node.data.mkdir(parents=True)
    with pytest.raises(RuntimeError) as refused:
        node.start()
    log = str(refused.value)
    assert f"PostgreSQL at 127.0.0.1:{port}) cannot be reached" in log
    assert "s3cret-pw" not in log


def test_a_token_made_for_the_cluster_works_on_every_node_and_its_revocation_everywhere_at_once(
    three: list[Node], cluster_dsn: str
) -> None:
    made = _cli(cluster_dsn, "token", "create", "Ada", "--email", "ada@example.org", "--scope", "*:admin", "--json")
    assert made.returncode == 0, made.stderr
    created = orjson.loads(made.stdout)
    token = created["token"]
    auth = {"Authorization": f"Bearer {token}"}
    for node in three:
        assert httpx.get(node.url + "/repos", headers=auth, timeout=10).status_code == 200
        # With a credential configured, the loopback trust of an open server is over on every node.
        assert httpx.get(node.url + "/repos", timeout=10).status_code == 401
    # A second token made through one node's admin API works on the others.
    issued = httpx.post(
        three[0].url + "/admin/tokens",
        headers=auth,
        json={"name": "Grace", "email": "grace@example.org", "scopes": {"*": ["read"]}},
        timeout=10,
    )
    assert issued.status_code == 201, issued.text
    grace = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert httpx.get(three[2].url + "/repos", headers=grace, timeout=10).status_code == 200
    revoked = httpx.delete(f"{three[1].url}/admin/tokens/{issued.json()['id']}", headers=auth, timeout=10)
    assert revoked.status_code == 204
    for node in three:  # at once: no wait, no retry
        assert httpx.get(node.url + "/repos", headers=grace, timeout=10).status_code == 401
    gone = _cli(cluster_dsn, "token", "revoke", created["id"])
    assert gone.returncode == 0, gone.stderr
    for node in three:
        assert httpx.get(node.url + "/repos", headers=auth, timeout=10).status_code == 401


def test_a_write_to_a_node_that_lost_its_repository_is_a_retryable_503_and_writes_nothing(
    tmp_path: Path, cluster_dsn: str
) -> None:
    with node_with_repository(tmp_path, cluster_dsn, "books") as (_, http, base):
        assert http.put(base + "/entities/a", json={"type": "page", "title": "A"}).status_code == 201
        # A move fenced it behind the node's back (epoch + 1, as ControlPlane.fence does).
        _psql(cluster_dsn, "update repositories set state = 'fenced', epoch = epoch + 1 where name = 'books'")
        refused = http.put(base + "/entities/b", json={"type": "page", "title": "B"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["type"] == "urn:gitstore:problem:not-owner"
        assert refused.json()["name"] == "books" and "books" in refused.json()["detail"]
        assert http.get(base + "/entities/b?state=draft").status_code == 404
        assert http.get(base + "/entities/a?state=draft").status_code == 200  # reads go on

"""`gitstore cluster status|nodes|move|drain|promote` against real nodes and the real control plane."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import orjson

from tests.cluster.moving import cluster, document, owner_of
from tests.cluster.replicating import wait_in_sync
from tests.serving import ROOT


def _gitstore(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitstore.cli", "cluster", *args],
        cwd=ROOT,
        env=os.environ | {"GITSTORE_CLUSTER_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cluster_command_shows_nodes_moves_and_drains(tmp_path: Path, cluster_dsn: str) -> None:
    with cluster(tmp_path, cluster_dsn) as (one, two, three):
        for name in ("alpha", "beta"):
            assert httpx.post(f"{one.url}/repos", json={"name": name}).status_code == 201
            assert httpx.put(f"{one.url}/repos/{name}/entities/home", json=document(name)).status_code == 201

        listed = _gitstore(cluster_dsn, "nodes", "--json")
        assert listed.returncode == 0, listed.stderr
        nodes = {n["name"]: n for n in orjson.loads(listed.stdout)}
        assert set(nodes) == {one.name, two.name, three.name}
        assert all(n["alive"] and n["state"] == "active" for n in nodes.values())
        assert sum(n["repositories"] for n in nodes.values()) == 2

        owner = owner_of(one.url, "alpha")
        target = next(n.name for n in (one, two, three) if n.name != owner)
        moved = _gitstore(cluster_dsn, "move", "alpha", target, "--json")
        assert moved.returncode == 0, moved.stderr
        status = orjson.loads(moved.stdout)
        assert status["state"] == "done" and status["target"] == target and status["pause_seconds"] > 0
        shown = orjson.loads(_gitstore(cluster_dsn, "status", "--json").stdout)
        assert {r["repository"]: r["owner"] for r in shown["repositories"]}["alpha"] == target
        text = _gitstore(cluster_dsn, "status")
        assert text.returncode == 0 and "alpha" in text.stdout and target in text.stdout

        refused = _gitstore(cluster_dsn, "move", "alpha", target)
        assert refused.returncode == 2 and "already lives on node" in refused.stderr
        unknown = _gitstore(cluster_dsn, "move", "alpha", "nowhere")
        assert unknown.returncode == 2 and "nowhere" in unknown.stderr

        (replica,) = wait_in_sync(cluster_dsn, "beta")
        promoted = _gitstore(cluster_dsn, "promote", "beta", replica, "--json")
        assert promoted.returncode == 0, promoted.stderr
        assert orjson.loads(promoted.stdout)["owner"] == replica == owner_of(one.url, "beta")
        again = _gitstore(cluster_dsn, "promote", "beta", replica)  # it owns it now: no replica to promote
        assert again.returncode == 2 and "holds no replica" in again.stderr

        drained = _gitstore(cluster_dsn, "drain", target)
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert "draining" in drained.stdout and "done" in drained.stdout
        after = orjson.loads(_gitstore(cluster_dsn, "nodes", "--json").stdout)
        assert {n["name"]: (n["state"], n["repositories"]) for n in after}[target] == ("draining", 0)
        assert httpx.get(f"{three.url}/repos/alpha/entities/home?state=draft").json()["title"] == "alpha"


def test_the_compose_file_runs_three_nodes_of_one_image_on_one_postgres() -> None:
    import yaml  # schemathesis's dependency

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("node-")}
    assert len(nodes) == 3 and services["postgres"]["image"] == "postgres:15"
    assert services["token"]["build"] == "." and (ROOT / "Dockerfile").is_file()
    dsns = {s["environment"]["GITSTORE_CLUSTER_DSN"] for s in [*nodes.values(), services["token"]]}
    assert len(dsns) == 1 and dsns.pop().endswith("@postgres:5432/gitstore")
    for name, node in nodes.items():
        assert node["image"] == services["token"]["image"]
        assert node["environment"]["GITSTORE_NODE_NAME"] == name
        assert node["environment"]["GITSTORE_NODE_URL"] == f"http://{name}:8000"
        assert node["command"][-2:] == ["--workers", "1"]  # a cluster node runs one worker
        assert node["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert node["volumes"] == [f"{name}:/data"]

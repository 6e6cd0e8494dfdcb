"""The service in cluster mode, in-process: the lifespan joins, creating places, listing lists the
cluster; embedded mode never touches psycopg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore.cluster.api import ControlPlane
from gitstore.errors import ControlPlaneUnavailable
from tests.serving import ROOT, free_port


def _settings(tmp_path: Path, dsn: str, name: str = "node-1") -> Settings:
    return Settings(
        data_dir=tmp_path / name, load_samples=False, cluster_dsn=dsn, node_name=name, node_url="http://127.0.0.1:9001"
    )


def test_a_node_joins_creates_and_lists_the_cluster_with_owners(tmp_path: Path, cluster_dsn: str) -> None:
    other = ControlPlane(cluster_dsn)
    other.join("node-2", "http://127.0.0.1:9002")
    other.place("elsewhere", "lives on node-2")
    with TestClient(create_app(_settings(tmp_path, cluster_dsn))) as client:
        made = client.post("/repos", json={"name": "books", "description": "mine"})
        assert made.status_code == 201, made.text
        assert client.app.state.cluster.owns("books")  # type: ignore[attr-defined]
        listed = {item["name"]: item for item in client.get("/repos").json()["items"]}
        assert listed["books"]["owner"] == "node-1" and listed["books"]["main"] is None
        assert listed["elsewhere"] == {
            "name": "elsewhere",
            "description": "lives on node-2",
            "main": None,
            "draft": None,
            "owner": "node-2",
            "owner_alive": True,
            "state": "active",
        }
        assert client.post("/repos", json={"name": "books"}).status_code == 409
    names = {n.name: n for n in other.nodes()}
    assert names["node-1"].state == "down" and not names["node-1"].alive  # a clean stop says so
    other.close()


def test_an_unreachable_control_plane_stops_the_app_before_it_serves(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(ControlPlaneUnavailable, match=f"127.0.0.1:{port}"):
        create_app(_settings(tmp_path, f"postgresql://gitstore:pw@127.0.0.1:{port}/gitstore"))


def test_embedded_mode_never_imports_psycopg(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from api.main import create_app\n"
        "from api.settings import Settings\n"
        f"settings = Settings(data_dir={str(tmp_path / 'data')!r}, load_samples=False)\n"
        "with TestClient(create_app(settings)) as c:\n"
        "    c.post('/repos', json={'name': 'demo'}).raise_for_status()\n"
        "    c.put('/repos/demo/entities/a', json={'type': 'page', 'title': 'A'}).raise_for_status()\n"
        "    assert c.get('/repos').json()['items'][0]['name'] == 'demo'\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"

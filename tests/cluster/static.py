"""Nodes that forward by a route table in a JSON file instead of a control plane: forwarding and
its streaming tested on their own, with routes a test can make stale on purpose (each node reads
its own file, caches what it read, and reads it again only when forwarding refreshes a route).

    {"nodes": {"node-1": "http://127.0.0.1:...", ...}, "repos": {"site": "node-2"}, "down": []}

The app is the real one (`api.main.create_app`) with api.forwarding outermost, run by uvicorn
as a factory: `--factory tests.cluster.static:create_app`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from api.forwarding import Forwarding
from api.main import create_app as create_real_app
from tests.cluster.nodes import Node
from tests.serving import free_port, start_server

ROUTES = "GITSTORE_TEST_ROUTES"
SECRET = b"static-cluster-secret"
APP = ("--factory", "tests.cluster.static:create_app")


@dataclass(frozen=True)
class StaticRoute:
    repo: str
    owner: str
    owner_url: str
    owner_alive: bool = True


class StaticRoutes:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.cache: dict[str, StaticRoute | None] = {}
        self.refreshed: list[str] = []

    def cached(self, repo: str) -> tuple[bool, StaticRoute | None]:
        return (repo in self.cache, self.cache.get(repo))

    def route(self, repo: str) -> StaticRoute | None:
        if repo not in self.cache:
            self.cache[repo] = self._read(repo)
        return self.cache[repo]

    def refresh(self, repo: str) -> StaticRoute | None:
        self.refreshed.append(repo)
        self.cache.pop(repo, None)
        return self.route(repo)

    def _read(self, repo: str) -> StaticRoute | None:
        table = orjson.loads(self.path.read_bytes())
        owner = table["repos"].get(repo)
        if owner is None:
            return None
        return StaticRoute(repo, owner, table["nodes"][owner], owner not in table.get("down", []))


class StaticCluster:
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.secret = SECRET
        self.routes = StaticRoutes(path)
        self.plane = self
        self.forgotten: list[str] = []

    def place(self, repo: str, description: str = "", replication_factor: int | None = None) -> StaticRoute:
        """Where the table says, or here."""
        return self.routes.refresh(repo) or StaticRoute(repo, self.name, "", True)

    def forget(self, repo: str, *, owner: str | None = None) -> None:
        self.forgotten.append(repo)


def create_app() -> Any:
    app = create_real_app()
    app.add_middleware(Forwarding, cluster=StaticCluster(os.environ["GITSTORE_NODE_NAME"], Path(os.environ[ROUTES])))
    return app


@dataclass
class StaticNode(Node):
    """A node of tests/cluster/nodes.py that routes by its own table instead of a control plane."""

    routes: Path = Path("routes.json")

    def start(self) -> StaticNode:
        env = {ROUTES: str(self.routes), "GITSTORE_NODE_NAME": self.name, "GITSTORE_FOLD_SECONDS": "0.2"} | self.env
        self.proc, _ = start_server(self.data, port=self.port, env=env, app=APP)
        return self

    def write_routes(
        self,
        repos: dict[str, str],
        nodes: list[StaticNode],
        down: tuple[str, ...] = (),
        others: dict[str, str] | None = None,
    ) -> None:
        """Routes `repos` to the `nodes` (and `others`: more node names and their URLs)."""
        table = {"nodes": {n.name: n.url for n in nodes} | (others or {}), "repos": repos, "down": list(down)}
        self.routes.write_bytes(orjson.dumps(table))


def static_nodes(base: Path, count: int, repos: dict[str, str]) -> list[StaticNode]:
    """`count` nodes (not started) named node-1, ..., each with its own data directory and route
    file, every file saying `repos`."""
    made = []
    for i in range(1, count + 1):
        data = base / f"node-{i}" / "data"
        data.mkdir(parents=True, exist_ok=True)
        made.append(StaticNode(f"node-{i}", data, free_port(), dsn="", routes=base / f"node-{i}" / "routes.json"))
    for node in made:
        node.write_routes(repos, made)
    return made

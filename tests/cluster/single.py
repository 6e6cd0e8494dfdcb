"""One real node process with one repository in it, for tests of what a node does on its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from tests.cluster.nodes import Node, nodes


@contextmanager
def node_with_repository(base: Path, dsn: str, repo: str) -> Iterator[tuple[Node, httpx.Client, str]]:
    """A started node `node-1` that created `repo`; yields it, a client, and the repository's URL."""
    (node,) = nodes(base, dsn, 1)
    node.start()
    try:
        with httpx.Client(timeout=30) as http:
            http.post(node.url + "/repos", json={"name": repo}).raise_for_status()
            yield node, http, f"{node.url}/repos/{repo}"
    finally:
        node.stop()

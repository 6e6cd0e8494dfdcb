"""PostgreSQL going away while a node serves (kill -9 of the real server): writes are refused 503
with Retry-After (the fence check fails closed), reads of the node's own repositories go on, and
the node writes again once PostgreSQL is back, with no restart of its own."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.cluster.postgres import BIN, Postgres
from tests.cluster.single import node_with_repository

PAGE = {"type": "page", "title": "Page", "base_path": "/page"}


def test_writes_are_refused_and_local_reads_go_on_while_postgres_is_away(
    tmp_path: Path, postgres: Postgres, cluster_dsn: str
) -> None:
    with node_with_repository(tmp_path, cluster_dsn, "books") as (_, http, base):
        first = http.put(base + "/entities/page", json=PAGE)
        assert first.status_code == 201, first.text
        http.post(base + "/publish", json={"keys": ["page"]}).raise_for_status()
        # The harness's server runs with synchronous_commit=off, which may lose the last
        # commits (the repository's row) to a kill -9; a production server would not.
        subprocess.run([str(BIN / "psql"), cluster_dsn, "-c", "checkpoint"], check=True, capture_output=True)
        postgres.kill()
        try:
            refused = http.put(base + "/entities/page", json=PAGE | {"title": "Changed"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "2"
            assert refused.json()["type"] == "urn:gitstore:problem:control-plane-unavailable"
            assert "127.0.0.1:" in refused.json()["detail"]
            assert http.get(base + "/entities/page?state=draft").json()["title"] == "Page"  # nothing moved
            assert http.get(base + "/paths/page").status_code == 200
            assert http.get(base).status_code == 200
        finally:
            postgres.start()
        deadline = time.monotonic() + 30
        while True:  # the pool reconnects on the next question; bounded in time
            again = http.put(base + "/entities/page", json=PAGE | {"title": "Changed"})
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert again.status_code == 200, again.text
        assert http.get(base + "/entities/page?state=draft").json()["title"] == "Changed"

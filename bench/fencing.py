"""What the fence check costs a write (issue 23): draft writes per second in one repository of a
cluster node, with its guard (a query to PostgreSQL at each ref move) and without, alternated
in rounds in one run, so the machine's noise falls on both alike.

    python -m bench.fencing [--writes 300] [--rounds 6] [--dsn postgresql://...]

Without --dsn it starts a private PostgreSQL 15 (tests/cluster/postgres.py, as the tests do).
Also times the check alone (check_owner, one round trip) over the same connection pool.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from gitstore import Author, Store, content
from gitstore.cluster.api import ClusterNode, ControlPlane

ME = Author("Bench", "bench@example.org")


def _writes(node: ClusterNode, repo_name: str, count: int, start: int) -> float:
    """Seconds for `count` draft writes (one entity each, new entities)."""
    repo = node.store.repository(repo_name)
    began = time.perf_counter()
    for i in range(start, start + count):
        content.put_draft(repo, f"e{i}", {"type": "page", "title": f"Page {i}"}, author=ME)
    return time.perf_counter() - began


def run(dsn: str, work: Path, writes: int, rounds: int) -> dict[str, Any]:
    plane = ControlPlane(dsn)
    node = ClusterNode(plane, "bench-1", "http://127.0.0.1:1")
    node.start(Store(work / "data"))
    try:
        repo = node.create_repository("bench")
        guard = node.fences.guarded()["bench"]
        _writes(node, "bench", 50, 0)  # warm: handles, caches, the pool's connections
        rates: dict[str, list[float]] = {"guarded": [], "unguarded": []}
        start = 50
        for _ in range(rounds):
            for kind in ("guarded", "unguarded"):
                if kind == "unguarded":
                    node.fences.unguard("bench")
                seconds = _writes(node, "bench", writes, start)
                start += writes
                rates[kind].append(writes / seconds)
                node.fences.guard(repo, guard)  # as the node had it
        checks = []
        for _ in range(1000):
            began = time.perf_counter()
            plane.check_owner("bench", "bench-1", guard, incarnation=plane.incarnation)
            checks.append(time.perf_counter() - began)
        guarded, unguarded = statistics.median(rates["guarded"]), statistics.median(rates["unguarded"])
        return {
            "writes_per_round": writes,
            "rounds": rounds,
            "guarded_writes_per_s": round(guarded, 1),
            "unguarded_writes_per_s": round(unguarded, 1),
            "added_ms_per_write": round((1 / guarded - 1 / unguarded) * 1000, 3),
            "check_owner_ms_p50": round(statistics.median(checks) * 1000, 3),
            "check_owner_ms_p99": round(sorted(checks)[int(len(checks) * 0.99)] * 1000, 3),
            "rates": {k: [round(r, 1) for r in v] for k, v in rates.items()},
        }
    finally:
        node.stop()
        plane.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--dsn", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-fencing-"))
    server = None
    try:
        dsn = args.dsn
        if dsn is None:
            from tests.cluster.postgres import Postgres

            # A folder of its own: the server runs as the postgres user, who cannot enter `work`.
            server = Postgres(Path(tempfile.mkdtemp(prefix="gitstore-bench-pg-")))
            server.start()
            dsn = server.create_database("bench")
        print(orjson.dumps(run(dsn, work, args.writes, args.rounds), option=orjson.OPT_INDENT_2).decode())
    finally:
        if server is not None:
            server.stop("immediate")
            shutil.rmtree(server.base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Replication's cost and failover's speed (issue 24, ADR 0016) on loopback: `make replicas-bench`.

    python -m bench.replicas [--seconds 10] [--writers 8] [--kills 10] [--quick]

Starts a PostgreSQL of its own and three gitstore nodes (one uvicorn worker each, the journal as
a cluster node runs it), and measures, in one run on one machine:

writes     PUT throughput and p50/p99 from `--writers` concurrent clients for `--seconds`, each
           written to its owner: a repository with replication factor 1, then one with 2 (each
           round shipped to the replica and durable there before it is acknowledged). Then
           publish throughput and p50/p99: each published key once, same clients. The ratio
           RF2/RF1 against the issue's targets (>= 70% of the throughput, p99 < 2x).
lag        While the RF2 writers run: how many rounds the replica's position (its
           `replication.json`) trails its owner's, sampled every 20 ms. Shipping is synchronous,
           so it is the rounds in flight, never an acknowledged one.
failover   `--kills` times: kill -9 of the owner under four writers; seconds from the kill to the
           first write acknowledged by the new owner (p50, max); the killed node restarted and
           back in sync before the next kill.

Prints JSON. The machine is shared and noisy: compare figures of one run with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

from bench.cluster import PAGE, Cluster, private_postgres, running_cluster
from tests.cluster.moving import percentile
from tests.cluster.nodes import Node
from tests.cluster.replicating import Spread, first_acknowledged_after, owner_now, wait_in_sync, wait_owner


def writes(cluster: Cluster, writers: int, seconds: float) -> dict[str, Any]:
    """PUT then publish throughput and latency, replication factor 1 against 2."""
    results: dict[str, Any] = {}
    for factor in (1, 2):
        repo = f"rf{factor}"
        made = cluster.client(cluster.nodes[0]).post("/repos", json={"name": repo, "replication_factor": factor})
        if made.status_code != 201:
            raise SystemExit(f"creating {repo}: {made.status_code} {made.text}")
        replicas = wait_in_sync(cluster.dsn, repo) if factor > 1 else set()
        owner = cluster.owner_of(repo)
        lag = _Lag(cluster, repo, owner, replicas.pop()) if replicas else None
        puts = asyncio.run(_timed(owner.url, repo, writers, seconds, publish=None))
        if lag is not None:
            results["lag"] = lag.stop()
        keys = [key for key, _ in puts]
        published = asyncio.run(_timed(owner.url, repo, writers, seconds, publish=keys))
        results[f"rf{factor}"] = {"put": _summary(puts, seconds), "publish": _summary(published, seconds)}
    rf1, rf2 = results["rf1"], results["rf2"]
    results["rf2_vs_rf1"] = {
        op: {
            "throughput_ratio": round(rf2[op]["per_s"] / rf1[op]["per_s"], 3) if rf1[op]["per_s"] else None,
            "p99_ratio": round(rf2[op]["p99_ms"] / rf1[op]["p99_ms"], 3) if rf1[op]["p99_ms"] else None,
        }
        for op in ("put", "publish")
    }
    return results


async def _timed(
    url: str, repo: str, writers: int, seconds: float, *, publish: list[str] | None
) -> list[tuple[str, float]]:
    """(key, seconds) of each acknowledged PUT of a new key, or publish of one of `publish`."""
    done: list[tuple[str, float]] = []
    todo = iter(publish) if publish is not None else None
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=writers)) as client:

        async def work(index: int) -> None:
            for n in itertools.count():
                if time.monotonic() >= deadline:
                    return
                key = f"k{index}-{n}" if todo is None else next(todo, None)
                if key is None:
                    return
                started = time.monotonic()
                if todo is None:
                    answer = await client.put(f"/repos/{repo}/entities/{key}", json=PAGE)
                else:
                    answer = await client.post(f"/repos/{repo}/entities/{key}/publish")
                if answer.status_code not in (200, 201):
                    raise SystemExit(
                        f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text}"
                    )
                done.append((key, time.monotonic() - started))

        await asyncio.gather(*(work(i) for i in range(writers)))
    return done


def _summary(samples: list[tuple[str, float]], seconds: float) -> dict[str, Any]:
    times = sorted(t for _, t in samples)
    return {
        "count": len(times),
        "per_s": round(len(times) / seconds, 1),
        "p50_ms": round(statistics.median(times) * 1000, 2) if times else None,
        "p99_ms": round(percentile(times, 99) * 1000, 2) if times else None,
    }


class _Lag:
    """Samples how many rounds the replica's position trails the owner's, until stopped."""

    def __init__(self, cluster: Cluster, repo: str, owner: Node, replica_name: str) -> None:
        replica = next(n for n in cluster.nodes if n.name == replica_name)
        self._owner = owner.data / f"{repo}.git" / "replication.json"
        self._replica = replica.data / ".replicas" / f"{repo}.git" / "replication.json"
        self._behind: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                ahead = orjson.loads(self._owner.read_bytes())["seq"]
                behind = orjson.loads(self._replica.read_bytes())["seq"]
            except (FileNotFoundError, orjson.JSONDecodeError, KeyError):
                continue
            self._behind.append(max(0, ahead - behind))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        samples = self._behind or [0]
        return {
            "samples": len(self._behind),
            "rounds_behind_max": max(samples),
            "rounds_behind_mean": round(statistics.fmean(samples), 3),
        }


def failover(cluster: Cluster, kills: int) -> dict[str, Any]:
    """Seconds from a kill -9 of the owner to the first write the new owner acknowledges."""
    made = cluster.client(cluster.nodes[0]).post("/repos", json={"name": "failover", "replication_factor": 2})
    if made.status_code != 201:
        raise SystemExit(f"creating failover: {made.status_code} {made.text}")
    wait_in_sync(cluster.dsn, "failover")
    times = []
    with Spread("failover", [n.url for n in cluster.nodes], retry_for=60) as writers:
        for _ in range(kills):
            time.sleep(0.5)
            owner = owner_now(cluster.nodes, "failover")
            moment = time.time()
            owner.kill()
            wait_owner(next(n for n in cluster.nodes if n.proc is not None).url, "failover", not_=owner.name)
            times.append(first_acknowledged_after(writers, moment))
            owner.start()
            wait_in_sync(cluster.dsn, "failover")
    times.sort()
    return {
        "kills": kills,
        "acknowledged_writes": len(writers.acknowledged),
        "gave_up": len(writers.gave_up),
        "p50_s": round(percentile(times, 50), 2),
        "max_s": round(times[-1], 2),
        "each_s": [round(t, 2) for t in times],
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with private_postgres() as postgres:
        with running_cluster(postgres, work, "writes", 3) as cluster:
            results["writes"] = writes(cluster, args.writers, args.seconds)
        if args.kills:
            with running_cluster(postgres, work, "failover", 3) as cluster:
                results["failover"] = failover(cluster, args.kills)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--kills", type=int, default=10, help="kill -9s of the owner (0: none)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: two seconds a run, two kills")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.writers, args.kills = 2.0, 4, 2
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-replicas-"))
    try:
        print(orjson.dumps(run(args, work), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

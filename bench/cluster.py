"""Cluster mode's costs (issue 23) on loopback: `make cluster-bench`.

    python -m bench.cluster [--requests 1000] [--seconds 10] [--writers 8] [--quick] [--forwarding-only]

Starts a PostgreSQL of its own (tests/cluster/postgres.py) and gitstore nodes (one uvicorn
worker each, the service's defaults, fsync on), and measures:

forwarding   A live GET (the published view of a random entity) and a PUT, asked in turn, one
             after another on warm keep-alive connections, three ways (a live GET four):
                 direct    of the owner
                 forwarded through the node that holds no copy (api.forwarding)
                 redirect  a 307 from another node (a real one: its `GET /repos/` answer), then
                           the request again to the owner: what the client of a redirecting
                           cluster pays at best (warm connections to both, and keeping its
                           Authorization across hosts, which git and browsers do not)
                 replica   (live GET) through the node holding the in-sync replica, which
                           answers it itself (api.replica_reads)
             p50/p99 of each, and what forwarding and a redirect add to the direct p50/p99.
throughput   Acknowledged PUTs per second from `--writers` concurrent clients for `--seconds`:
             one node, then three (repositories spread by placement) written through their
             owners and through random nodes. Per node, too: two cores cannot show three nodes
             scaling, only what a node costs.
move pause   The write pause while a repository of 1k, 10k and 100k entities (`--move-sizes`)
             moves to another node under four writers (`move_pause`): the move's own, fence to
             flip, step by step, and what the writers saw.

Prints JSON. The machine is shared and noisy: compare figures of one run with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

from tests.cluster.moving import Writers, pauses, percentile, start_move, wait_for_move
from tests.cluster.moving import seed_on_disk as seed_entities
from tests.cluster.nodes import Node, nodes
from tests.cluster.postgres import Postgres
from tests.cluster.replicating import wait_in_sync

NODE_ENV = {"GITSTORE_RELAY": "0"}
PAGE = {"type": "page", "title": "A page", "fields": {"body": "<p>Hello.</p>\n"}}

#: Repository sizes (entities) the move pause is measured at.
MOVE_PAUSE_SIZES = (1_000, 10_000, 100_000)


@dataclass
class Cluster:
    """Nodes on one control-plane database, with a keep-alive client per node."""

    nodes: list[Node]
    dsn: str
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, node: Node) -> httpx.Client:
        if node.name not in self.clients:
            self.clients[node.name] = httpx.Client(base_url=node.url, timeout=120)
        return self.clients[node.name]

    def owner_of(self, repo: str) -> Node:
        listed = self.client(self.nodes[0]).get("/repos").json()["items"]
        owner = next(item["owner"] for item in listed if item["name"] == repo)
        return next(node for node in self.nodes if node.name == owner)

    def create(self, repo: str, via: Node | None = None) -> Node:
        made = self.client(via or self.nodes[0]).post("/repos", json={"name": repo})
        _expect(made, 201)
        return self.owner_of(repo)


@contextmanager
def running_cluster(postgres: Postgres, base: Path, database: str, count: int) -> Iterator[Cluster]:
    dsn = postgres.create_database(database)
    made = nodes(base / database, dsn, count, env=NODE_ENV)
    cluster = Cluster(made, dsn)
    try:
        for node in made:
            node.start()
        yield cluster
    finally:
        for client in cluster.clients.values():
            client.close()
        for node in made:
            node.stop()


# -- forwarding overhead ------------------------------------------------------------------------


def forwarding(cluster: Cluster, requests: int, entities: int) -> dict[str, Any]:
    owner = cluster.create("fwd")
    # The repository has an in-sync replica (replication factor 2): a live read through the
    # replica's node is answered there (api.replica_reads), so forwarding proper is measured
    # through the third node, which holds no copy.
    replica_name = next(iter(wait_in_sync(cluster.dsn, "fwd")))
    replica = next(node for node in cluster.nodes if node.name == replica_name)
    other = next(node for node in cluster.nodes if node not in (owner, replica))
    direct, through, at_replica = cluster.client(owner), cluster.client(other), cluster.client(replica)
    for i in range(entities):
        put = direct.put(f"/repos/fwd/entities/e{i}", json=PAGE | {"title": f"Entity {i}"})
        _expect(put, 201)
        _expect(direct.post(f"/repos/fwd/entities/e{i}/publish", headers={"If-Match": put.headers["etag"]}), 200)
    rng = random.Random(23)

    def live_get(client: httpx.Client) -> None:
        _expect(client.get(f"/repos/fwd/entities/e{rng.randrange(entities)}"), 200)

    def redirected(ask: Callable[[httpx.Client], None], method: str) -> Callable[[httpx.Client], None]:
        def via_307(_: httpx.Client) -> None:
            _expect(through.request(method, "/repos/", content=orjson.dumps(PAGE) if method == "PUT" else None), 307)
            ask(direct)

        return via_307

    etags: dict[str, str] = {}

    def put(key: str) -> Callable[[httpx.Client], None]:
        def write(client: httpx.Client) -> None:
            headers = {"If-Match": etags[key]} if key in etags else {}
            answer = client.put(f"/repos/fwd/entities/{key}", json=PAGE | {"title": str(time.time())}, headers=headers)
            _expect(answer, 200, 201)
            etags[key] = answer.headers["etag"]

        return write

    results: dict[str, Any] = {"owner": owner.name, "through": other.name, "replica": replica.name}
    gets = _in_turn(
        {
            "direct": (direct, live_get),
            "forwarded": (through, live_get),
            "redirect": (through, redirected(live_get, "GET")),
            "replica": (at_replica, live_get),
        },
        requests,
    )
    results["live_get"] = _summary(gets)
    puts = _in_turn(
        {
            "direct": (direct, put("w-direct")),
            "forwarded": (through, put("w-forwarded")),
            "redirect": (through, redirected(put("w-redirect"), "PUT")),
        },
        max(requests // 4, 50),
    )
    results["put"] = _summary(puts)
    results["cpu_us_per_live_get"] = _cpu_per_request(owner, other, direct, through, live_get, requests)
    results["cpu_us_per_put"] = _cpu_per_request(owner, other, direct, through, put("w-cpu"), max(requests // 4, 50))
    return results


def _cpu_per_request(
    owner: Node, other: Node, direct: httpx.Client, through: httpx.Client, ask: Callable[[httpx.Client], None], n: int
) -> dict[str, float]:
    """The servers' CPU time per live GET, direct and forwarded: steadier than latency on a
    shared machine, and what a forwarded request really costs the cluster."""
    out = {}
    for name, client in (("direct", direct), ("forwarded", through)):
        before = {node.name: _cpu_seconds(node) for node in (owner, other)}
        for _ in range(n):
            ask(client)
        for node in (owner, other):
            role = "owner" if node is owner else "forwarding_node"
            out[f"{name}_{role}"] = round((_cpu_seconds(node) - before[node.name]) / n * 1e6, 1)
    return out


def _cpu_seconds(node: Node) -> float:
    assert node.proc is not None
    fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _in_turn(
    ways: dict[str, tuple[httpx.Client, Callable[[httpx.Client], None]]], rounds: int
) -> dict[str, list[float]]:
    """Each way once a round, in a fresh random order each round (so that what else the machine
    does lands on every way alike); milliseconds."""
    for client, ask in ways.values():  # warm the connections and the caches
        for _ in range(20):
            ask(client)
    times: dict[str, list[float]] = {name: [] for name in ways}
    order = list(ways)
    for _ in range(rounds):
        random.shuffle(order)
        for name in order:
            client, ask = ways[name]
            started = time.perf_counter()
            ask(client)
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, samples in times.items():
        out[name] = {"p50_ms": _round(statistics.median(samples)), "p99_ms": _round(_p99(samples)), "n": len(samples)}
    for name in ("forwarded", "redirect", "replica"):
        if name not in times:
            continue
        paired = [way - own for way, own in zip(times[name], times["direct"], strict=True)]
        out[f"{name}_added"] = {
            "p50_ms": _round(out[name]["p50_ms"] - out["direct"]["p50_ms"]),
            "p99_ms": _round(out[name]["p99_ms"] - out["direct"]["p99_ms"]),
            "paired_median_ms": _round(statistics.median(paired)),
        }
    return out


# -- write throughput ---------------------------------------------------------------------------


def spread(cluster: Cluster, repos: int) -> dict[str, Node]:
    """`repos` new repositories, placed by the control plane (the least-loaded node each)."""
    names = [f"tp-{i}" for i in range(repos)]
    return {name: cluster.create(name, cluster.nodes[i % len(cluster.nodes)]) for i, name in enumerate(names)}


def throughput(
    cluster: Cluster, owners: dict[str, Node], writers: int, seconds: float, *, through_random: bool
) -> dict[str, Any]:
    """Acknowledged PUTs (new keys) per second, each writer on the repositories in turn."""
    done = asyncio.run(_write_for(cluster, owners, writers, seconds, through_random))
    per_owner = {node.name: sum(n for repo, n in done.items() if owners[repo] is node) for node in cluster.nodes}
    total = sum(done.values())
    return {
        "nodes": len(cluster.nodes),
        "writers": writers,
        "through": "random nodes" if through_random else "owners",
        "writes_per_s": round(total / seconds, 1),
        "writes_per_s_per_node": round(total / seconds / len(cluster.nodes), 1),
        "by_owner_per_s": {name: round(n / seconds, 1) for name, n in per_owner.items()},
    }


async def _write_for(
    cluster: Cluster, owners: dict[str, Node], writers: int, seconds: float, through_random: bool
) -> dict[str, int]:
    done = dict.fromkeys(owners, 0)
    names = list(owners)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=writers * len(cluster.nodes))
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def write(index: int) -> None:
            rng = random.Random(index)
            for n in itertools.count():
                if time.monotonic() >= deadline:
                    return
                repo = names[(index + n) % len(names)]
                node = rng.choice(cluster.nodes) if through_random else owners[repo]
                key = f"{'r' if through_random else 'o'}{index}-{n}"
                answer = await client.put(f"{node.url}/repos/{repo}/entities/{key}", json=PAGE)
                if answer.status_code != 201:
                    raise SystemExit(f"PUT {repo} through {node.name}: {answer.status_code} {answer.text}")
                done[repo] += 1

        await asyncio.gather(*(write(i) for i in range(writers)))
    return done


# -- move pause (the move helper's) -------------------------------------------------------------


def move_pause(cluster: Cluster, sizes: tuple[int, ...]) -> dict[str, Any]:
    """For each size in `sizes`: a repository of that many entities (written through the library
    into its owner's data directory, half of them published), moved to another node (`POST
    /admin/cluster/moves`, asked of the third) while four writers keep writing through the two
    nodes that do not own it, each write retried every 20 ms until acknowledged. The pause is the
    move's own (fence to flip, and each step in it) and what the writers saw: their writes'
    latency, retries included, p50/p99/max, and the longest gap between acknowledged writes."""
    results: dict[str, Any] = {}
    for size in sizes:
        repo = f"moving-{size}"
        source = cluster.create(repo)
        seed_entities(source.data, repo, size)
        target, via = (node for node in cluster.nodes if node is not source)
        with Writers(repo, [via.url, target.url]) as writers:
            time.sleep(2.0)
            started = time.time()
            _expect(start_move(via.url, repo, target.name), 202)
            status = wait_for_move(via.url, repo, target.name, timeout=3600)
            time.sleep(2.0)
        if status["state"] != "done":
            raise SystemExit(f"the move of {repo} failed: {status['error']}")
        during = pauses(writers, started, status["finished_at"] + 2.0)
        acked = sorted(w.answered for w in writers.acknowledged)
        results[str(size)] = {
            "move_seconds": _round(status["finished_at"] - status["started_at"]),
            "rounds": [(r["refs_moved"], _round(r["seconds"])) for r in status["rounds"]],
            "fence_to_flip_ms": _round(status["pause_seconds"] * 1000),
            "steps_ms": {k: _round(v * 1000) for k, v in status["steps"].items()},
            "seal_round_ms": {
                k: _round(status["rounds"][-1][k] * 1000)
                for k in ("snapshot_seconds", "fetch_seconds", "install_seconds")
            },
            "write_latency_ms": {
                "p50": _round(percentile(during, 50) * 1000),
                "p99": _round(percentile(during, 99) * 1000),
                "max": _round(max(during) * 1000),
            },
            "longest_gap_between_acknowledged_writes_ms": _round(
                max(b - a for a, b in itertools.pairwise(acked)) * 1000
            ),
            "writes_acknowledged": len(writers.acknowledged),
            "writes_given_up": len(writers.gave_up),
        }
    return results


# -- running ------------------------------------------------------------------------------------


@contextmanager
def private_postgres() -> Iterator[Postgres]:
    """A PostgreSQL of the benchmark's own, removed after it."""
    # Its own folder in /tmp: it is handed to the postgres user, who cannot enter `work` (0700).
    postgres = Postgres(Path(tempfile.mkdtemp(prefix="gitstore-bench-pg-")))
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop("immediate")
        shutil.rmtree(postgres.base, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with private_postgres() as postgres:
        if args.move_only:
            with running_cluster(postgres, work, "moves", 3) as cluster:
                results["move_pause"] = move_pause(cluster, args.move_sizes)
            return results
        with running_cluster(postgres, work, "forwarding", 3) as cluster:
            results["forwarding"] = forwarding(cluster, args.requests, args.entities)
        if args.forwarding_only:
            return results
        tp = results["throughput"] = []
        with running_cluster(postgres, work, "one", 1) as cluster:
            tp.append(throughput(cluster, spread(cluster, 6), args.writers, args.seconds, through_random=False))
        with running_cluster(postgres, work, "three", 3) as cluster:
            owners = spread(cluster, 6)
            tp.append(throughput(cluster, owners, args.writers, args.seconds, through_random=False))
            tp.append(throughput(cluster, owners, args.writers, args.seconds, through_random=True))
        if not args.skip_move:
            with running_cluster(postgres, work, "moves", 3) as cluster:
                results["move_pause"] = move_pause(cluster, args.move_sizes)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="rounds of live GETs (PUTs: a quarter)")
    parser.add_argument("--entities", type=int, default=200, help="published entities the GETs read")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--skip-move", action="store_true")
    parser.add_argument("--move-only", action="store_true", help="only the move pause")
    parser.add_argument("--forwarding-only", action="store_true", help="only the forwarding overhead")
    parser.add_argument(
        "--move-sizes", type=lambda text: tuple(int(n) for n in text.split(",")), default=MOVE_PAUSE_SIZES
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few requests and seconds")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.entities, args.seconds, args.writers = 60, 20, 2.0, 4
        args.move_sizes = (1_000,)
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-cluster-"))
    try:
        print(orjson.dumps(run(args, work), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _expect(answer: httpx.Response, *statuses: int) -> None:
    if answer.status_code not in statuses:
        raise SystemExit(f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text}")


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1 else samples[0]


def _round(value: float) -> float:
    return round(value, 3)


if __name__ == "__main__":
    main()

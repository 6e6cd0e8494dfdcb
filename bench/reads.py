"""Hot reads against the framework's floor, over HTTP on one keep-alive connection (issue 21).

    python -m bench.reads [--entities 1000] [--rounds 20] [--batch 100]

Serves a fresh data directory (one uvicorn worker, the service's defaults), creates
`--entities` components and publishes them, and gives one component 50 versions (a publish
every 5th). Then it writes, a quarter of `--rounds` rounds, a batch each of
creates (new keys) and updates (of published keys): an update should cost no more than a
create. Then, in `--rounds` rounds, it asks in turn a batch of each:

    floor     GET of an unknown path: routing, middleware and the client, no gitstore
    live      GET /repos/{r}/entities/{key}: the published view of a random component
    versions  GET /repos/{r}/entities/{key}/versions?limit=50

and prints the median requests/s of each and the median of each round's ratio to that round's
floor: on a shared machine only ratios from one run mean anything, and asking in turn keeps
what else the machine does from landing on one kind of request. Beside them, the server's CPU
time per request of each kind (`*_server_us`), which such noise moves much less.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

from bench.git_access import serve

REPO = "bench"
JSON = {"Content-Type": "application/json"}


def component(i: int, rev: int) -> bytes:
    """~400 bytes of fields, as the shared perf workload writes."""
    fields = {
        "display_name": f"Problem {i} rev {rev}",
        "weight": 1,
        "max_attempts": 3,
        "data": f"<problem><p>Question {i} (rev {rev}): what is {i} + {rev}?</p></problem>",
        "tags": ["bench", f"group-{i % 17}"],
        "rev": rev,
    }
    return orjson.dumps({"type": "component", "title": f"Problem {i} rev {rev}", "fields": fields})


def timed(http: httpx.Client, requests: list[tuple[str, str, bytes | None]], expect: set[int]) -> float:
    """Requests per second of `requests` asked one after another; every status checked."""
    start = time.perf_counter()
    statuses = [
        http.request(method, path, content=body, headers=JSON if body else None).status_code
        for method, path, body in requests
    ]
    seconds = time.perf_counter() - start
    if not set(statuses) <= expect:
        raise SystemExit(f"unexpected answers {sorted(set(statuses) - expect)} to {requests[0][:2]}")
    return len(requests) / seconds


def run(entities: int, rounds: int, batch: int, work: Path) -> dict[str, Any]:
    proc, url = serve(work / "data", {"GITSTORE_RELAY": "0"})
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            return _measure(http, partial(_cpu_seconds, proc.pid), entities, rounds, batch)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """CPU time the server has used so far: it varies much less with what else the machine
    does than requests per second do."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(http: httpx.Client, cpu: Callable[[], float], n: int, rounds: int, batch: int) -> dict[str, Any]:
    results: dict[str, Any] = {"entities": n, "rounds": rounds, "batch": batch}
    http.post("/repos", json={"name": REPO}).raise_for_status()
    base = f"/repos/{REPO}/entities"
    keys = [f"c{i:05d}" for i in range(n)]
    timed(http, [("PUT", f"{base}/{k}", component(i, 1)) for i, k in enumerate(keys)], {201})
    http.post(f"/repos/{REPO}/publish", json={"all_drafts": True}).raise_for_status()
    history = keys[0]
    for rev in range(2, 52):  # 50 versions in all, every 5th published
        http.put(f"{base}/{history}", content=component(0, rev), headers=JSON).raise_for_status()
        if rev % 5 == 0:
            http.post(f"{base}/{history}/publish").raise_for_status()

    # Writes in turn: creates of new keys, updates of published ones (the workload's phase c).
    fresh = (f"new{i:06d}" for i in range(10**6))
    revs = dict.fromkeys(keys, 1)

    def updates() -> list[tuple[str, str, bytes | None]]:
        chosen = rng.sample(keys[1:], k=min(batch, n - 1))
        for k in chosen:
            revs[k] += 1
        return [("PUT", f"{base}/{k}", component(int(k[1:]), revs[k])) for k in chosen]

    rng = random.Random(21)
    writes: dict[str, Callable[[], list[tuple[str, str, bytes | None]]]] = {
        "create": lambda: [("PUT", f"{base}/{next(fresh)}", component(n, 1)) for _ in range(batch)],
        "update": updates,
    }
    results |= _in_turn(http, cpu, writes, {"create": {201}, "update": {200}}, max(1, rounds // 4), "create")

    reads: dict[str, Callable[[], list[tuple[str, str, bytes | None]]]] = {
        "floor": lambda: [("GET", "/__bench_floor__/unknown", None)] * batch,
        "live": lambda: [("GET", f"{base}/{k}", None) for k in rng.choices(keys, k=batch)],
        "versions": lambda: [("GET", f"{base}/{history}/versions?limit=50", None)] * batch,
    }
    for kind, make in reads.items():  # warm: first requests build routes' caches
        timed(http, make()[:20], {404} if kind == "floor" else {200})
    results |= _in_turn(http, cpu, reads, {"floor": {404}, "live": {200}, "versions": {200}}, rounds, "floor")
    return results


def _in_turn(
    http: httpx.Client,
    cpu: Callable[[], float],
    kinds: dict[str, Callable[[], list[tuple[str, str, bytes | None]]]],
    expected: dict[str, set[int]],
    rounds: int,
    against: str,
) -> dict[str, Any]:
    """Each kind's median requests/s, its median ratio to `against` in the same round, and the
    server's CPU time per request of it."""
    per_s: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu_used = dict.fromkeys(kinds, 0.0)
    asked = dict.fromkeys(kinds, 0)
    for _ in range(rounds):
        for kind, make in kinds.items():
            requests = make()
            before = cpu()
            per_s[kind].append(timed(http, requests, expected[kind]))
            cpu_used[kind] += cpu() - before
            asked[kind] += len(requests)
    results: dict[str, Any] = {}
    for kind, figures in per_s.items():
        results[f"{kind}_per_s"] = round(statistics.median(figures), 1)
        if kind != against:
            ratios = [mine / theirs for mine, theirs in zip(figures, per_s[against], strict=True)]
            results[f"{kind}_of_{against}"] = round(statistics.median(ratios), 2)
        results[f"{kind}_server_us"] = round(cpu_used[kind] / asked[kind] * 1e6)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-reads-"))
    try:
        results = run(args.entities, args.rounds, args.batch, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in results.items():
        print(f"  {name:<20} {value}", file=sys.stderr)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

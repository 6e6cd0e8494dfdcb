"""Hot reads against the framework's floor, over HTTP on one keep-alive connection (issue 21).

    python -m bench.reads [--entities 1000] [--rounds 5] [--batch 300]

Serves a fresh data directory (one uvicorn worker, the service's defaults), creates
`--entities` components and publishes them, updates each once, and gives one component 50
versions (a publish every 5th). Then, in `--rounds` rounds, asks in turn a batch of each:

    floor     GET of an unknown path: routing, middleware and the client, no gitstore
    live      GET /repos/{r}/entities/{key}: the published view of a random component
    versions  GET /repos/{r}/entities/{key}/versions?limit=50

and prints the median requests/s of each and the median of each round's ratio to that round's
floor: on a shared machine only ratios from one run mean anything, and asking in turn keeps
what else the machine does from landing on one kind of request. The creates and updates over
the same connection are timed too (updates/s against creates/s: an update should cost no more).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
            return _measure(http, entities, rounds, batch)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _measure(http: httpx.Client, n: int, rounds: int, batch: int) -> dict[str, Any]:
    results: dict[str, Any] = {"entities": n, "rounds": rounds, "batch": batch}
    http.post("/repos", json={"name": REPO}).raise_for_status()
    base = f"/repos/{REPO}/entities"
    keys = [f"c{i:05d}" for i in range(n)]
    results["create_per_s"] = round(
        timed(http, [("PUT", f"{base}/{k}", component(i, 1)) for i, k in enumerate(keys)], {201}), 1
    )
    http.post(f"/repos/{REPO}/publish", json={"all_drafts": True}).raise_for_status()
    results["update_per_s"] = round(
        timed(http, [("PUT", f"{base}/{k}", component(i, 2)) for i, k in enumerate(keys)], {200}), 1
    )
    results["update_over_create"] = round(results["update_per_s"] / results["create_per_s"], 2)
    history = keys[0]
    for rev in range(3, 52):  # 50 versions in all, every 5th published
        http.put(f"{base}/{history}", content=component(0, rev), headers=JSON).raise_for_status()
        if rev % 5 == 0:
            http.post(f"{base}/{history}/publish").raise_for_status()

    rng = random.Random(21)
    kinds: dict[str, Callable[[], list[tuple[str, str, bytes | None]]]] = {
        "floor": lambda: [("GET", "/__bench_floor__/unknown", None)] * batch,
        "live": lambda: [("GET", f"{base}/{k}", None) for k in rng.choices(keys, k=batch)],
        "versions": lambda: [("GET", f"{base}/{history}/versions?limit=50", None)] * batch,
    }
    expected = {"floor": {404}, "live": {200}, "versions": {200}}
    for kind, make in kinds.items():  # warm: first requests build routes' caches
        timed(http, make()[:20], expected[kind])
    per_s: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind, make in kinds.items():
            per_s[kind].append(timed(http, make(), expected[kind]))
    for kind, figures in per_s.items():
        results[f"{kind}_per_s"] = round(statistics.median(figures), 1)
        if kind != "floor":
            ratios = [mine / floor for mine, floor in zip(figures, per_s["floor"], strict=True)]
            results[f"{kind}_of_floor"] = round(statistics.median(ratios), 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=300)
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

"""The foundation workload, in-process, fsync on (the default):

    create 2000 entities, publish all, update 200 and publish them, read 1000 random published
    entities, list 50 versions of an entity that has 50.

Writes are also run from 2 and 4 worker processes on distinct entities, the way uvicorn workers
share one repository. The machine is shared and noisy: compare ratios within one run.

    python -m bench [--entities 2000] [--out results.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from gitstore import Author, Store, content
from gitstore.entities import api as entities
from gitstore.publishing import api as publishing

ME = Author("Bench", "bench@example.org")


def doc(n: int, rev: int = 1) -> dict[str, Any]:
    return {
        "type": "component",
        "title": f"Component {n} rev {rev}",
        "fields": {
            "weight": n % 7,
            "tags": ["a", "b"],
            "html": f"<p>Item {n}</p>\n<p>revision {rev}</p>\n",
        },
    }


def timed(results: dict[str, Any], name: str, ops: int, fn: Any) -> Any:
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    results[name] = {"ops": ops, "seconds": round(seconds, 4), "ops_per_s": round(ops / seconds, 1)}
    print(f"  {name:<32} {ops:>6} ops {seconds:8.3f} s {ops / seconds:10.1f} ops/s", file=sys.stderr)
    return value


def _worker(data_dir: str, keys: list[str], rev: int) -> None:
    repo = Store(data_dir).repository("bench")
    for key in keys:
        content.put_draft(repo, key, doc(int(key.split("-")[1]), rev), author=ME)


def parallel_writes(data_dir: Path, keys: list[str], procs: int, rev: int) -> None:
    ctx = multiprocessing.get_context("fork")
    chunks = [keys[i::procs] for i in range(procs)]
    workers = [ctx.Process(target=_worker, args=(str(data_dir), chunk, rev)) for chunk in chunks]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise SystemExit(f"worker failed: {w.exitcode}")


def run(n: int, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"entities": n}
    store = Store(workdir / "data")
    repo = store.create_repository("bench")
    keys = [f"item-{i:05d}" for i in range(n)]
    print(f"gitstore bench: {n} entities in {workdir}", file=sys.stderr)

    timed(
        results,
        "create",
        n,
        lambda: [content.put_draft(repo, k, doc(i), author=ME) for i, k in enumerate(keys)],
    )
    timed(results, "publish_all", n, lambda: content.publish_all_drafts(repo, author=ME))
    updated = random.Random(1).sample(keys, 200)
    timed(
        results,
        "update",
        200,
        lambda: [content.put_draft(repo, k, doc(int(k[5:]), 2), author=ME) for k in updated],
    )
    timed(
        results,
        "publish_200",
        200,
        lambda: content.publish(repo, [publishing.PublishTarget(k) for k in updated], author=ME),
    )
    reads = random.Random(2).sample(keys, 1000)
    entities.forget_cached()  # cold: every read parses its commit and files from git
    timed(results, "read_published_cold", 1000, lambda: [entities.get_entity(repo, k) for k in reads])
    timed(results, "read_published_warm", 1000, lambda: [entities.get_entity(repo, k) for k in reads])
    entities.forget_cached()
    timed(
        results,
        "read_draft_cold",
        1000,
        lambda: [entities.get_entity(repo, k, state="draft") for k in reads],
    )

    content.put_draft(repo, "history", doc(0), author=ME)
    for rev in range(2, 51):
        content.put_draft(repo, "history", doc(0, rev), author=ME)
    timed(
        results,
        "list_50_versions",
        200,
        lambda: [entities.list_versions(repo, "history", limit=50) for _ in range(200)],
    )

    for procs in (2, 4):
        more = [f"item-{i:05d}" for i in range(n, n + 1000)]
        keys_p = [k.replace("item-", f"p{procs}-") for k in more]
        timed(
            results,
            f"create_{procs}_processes",
            len(keys_p),
            partial(parallel_writes, store.data_dir, keys_p, procs, 1),
        )
        timed(
            results,
            f"update_{procs}_processes",
            len(keys_p),
            partial(parallel_writes, store.data_dir, keys_p, procs, 2),
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gitstore-bench-"))
    try:
        results = run(args.entities, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""The public copy's sync after a publish (issue 21): its CPU, and what it costs requests that
run while it does.

    python -m bench.public_copy [--sizes 2000 200] [--writes 40]
    python -m bench.public_copy --against /path/to/other/checkout [--rounds 3]

For each size N: a repository whose public copy is in step, N new entities (bench's foundation
document) published at once, then the sync the service runs after it (api.mirroring), timed
in CPU (the thread's) and wall time, next to the publish's own CPU. Then the same again, with
single draft writes run on the main thread for as long as the sync runs on another, as it
does in the service: their p50 against `--writes` writes with no sync running, and the time
the sync added to them in all, which is what it takes from the requests that follow a big
publish (the GIL and the cores).
Last, the sync after a one-entity publish, the common case under load (median of 50).

`--against` runs the same steps with the other checkout's `gitstore` (a detached worktree of
the commit to compare with, with its own .venv), alternating the two `--rounds` times in one
run, each in a fresh process and data directory, and reports old/new ratios of the medians.
The machine is shared and noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.__main__ import ME, doc
from gitstore import Store, content
from gitstore.publishing.api import PublishTarget, sync_live_mirror
from gitstore.repository import ContentRepository

HERE = Path(__file__).resolve().parent.parent
# Writes beside one sync stop at this many even if it has not ended.
_MOST_WRITES = 2000

# Run by the other checkout's interpreter: its own gitstore first, then this checkout's bench.
_CHILD = """import sys
import gitstore
print("  gitstore from", gitstore.__file__, file=sys.stderr)
sys.path.insert(0, {here!r})  # gitstore's modules now come from gitstore.__path__, bench from here
from bench.public_copy import measure_and_print
measure_and_print({sizes!r}, {writes})
"""


def cpu_and_wall(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this thread, wall seconds) that `fn` took."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - wall


def _in_step(work: Path, name: str) -> ContentRepository:
    """A repository with one live entity and its public copy in step, as a running service has."""
    repo = Store(work / "data").create_repository(name)
    content.put_draft(repo, "seed", doc(0), author=ME)
    content.publish_all_drafts(repo, author=ME)
    sync_live_mirror(repo)
    return repo


def _drafts(repo: ContentRepository, size: int, tag: str) -> None:
    for n in range(size):
        content.put_draft(repo, f"{tag}-{n}", doc(n), author=ME)


def _writes(repo: ContentRepository, count: int, tag: str, *, until: threading.Thread | None = None) -> list[float]:
    """Wall seconds of each draft write of a new entity: `count` of them, or with `until`, as
    many as run before that thread ends (at most `count`)."""
    samples = []
    for n in range(count):
        if until is not None and not until.is_alive():
            break
        t = time.perf_counter()
        content.put_draft(repo, f"{tag}-{n}", doc(n), author=ME)
        samples.append(time.perf_counter() - t)
    return samples


def after_a_big_publish(work: Path, size: int, writes: int) -> dict[str, Any]:
    repo = _in_step(work, f"size-{size}")
    _drafts(repo, size, "a")
    publish_cpu, _ = cpu_and_wall(lambda: content.publish_all_drafts(repo, author=ME))
    sync_cpu, sync_wall = cpu_and_wall(lambda: sync_live_mirror(repo))
    quiet = statistics.median(_writes(repo, writes, "quiet"))
    # again, with writes running while the sync does, on a thread of its own as in the service
    _drafts(repo, size, "b")
    content.publish_all_drafts(repo, author=ME)
    background: list[float] = []
    syncing = threading.Thread(target=lambda: background.extend(cpu_and_wall(lambda: sync_live_mirror(repo))))
    syncing.start()
    during = _writes(repo, _MOST_WRITES, "during", until=syncing)
    syncing.join(timeout=600)
    return {
        "publish_cpu_ms": round(publish_cpu * 1000, 1),
        "sync_cpu_ms": round(sync_cpu * 1000, 1),
        "sync_wall_ms": round(sync_wall * 1000, 1),
        "sync_over_publish_cpu": round(sync_cpu / publish_cpu, 2),
        "sync_wall_ms_with_writes": round(background[1] * 1000, 1),
        "writes_during_sync": len(during),
        "write_p50_ms_quiet": round(quiet * 1000, 2),
        "write_p50_ms_during_sync": round(statistics.median(during) * 1000, 2) if during else None,
        # what the sync took from the writes that ran beside it, over what they cost alone
        "writes_extra_ms": round((sum(during) - len(during) * quiet) * 1000, 1),
    }


def after_single_publishes(work: Path, runs: int = 50) -> dict[str, Any]:
    repo = _in_step(work, "single")
    _drafts(repo, 200, "s")
    content.publish_all_drafts(repo, author=ME)
    sync_live_mirror(repo)
    samples = []
    for n in range(runs):
        content.put_draft(repo, f"s-{n}", doc(n, rev=2), author=ME)
        content.publish(repo, [PublishTarget(f"s-{n}")], author=ME)
        samples.append(cpu_and_wall(lambda: sync_live_mirror(repo))[0])
    return {"sync_cpu_ms_p50": round(statistics.median(samples) * 1000, 2)}


def measure(sizes: list[int], writes: int, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        out[f"after_{size}"] = found = after_a_big_publish(work, size, writes)
        print(f"  after publishing {size}: {found}", file=sys.stderr)
    out["after_one"] = after_single_publishes(work)
    print(f"  after publishing one: {out['after_one']}", file=sys.stderr)
    return out


def measure_and_print(sizes: list[int], writes: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-public-copy-"))
    try:
        print(orjson.dumps(measure(sizes, writes, work)).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(other: Path, sizes: list[int], writes: int, rounds: int) -> dict[str, Any]:
    """Alternate `other`'s gitstore (with its own interpreter) and this one's, a process each."""
    found: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    runners = {"old": (other / ".venv" / "bin" / "python", other), "new": (Path(sys.executable), HERE)}
    for r in range(rounds):
        for label, (python, root) in runners.items():
            print(f"round {r + 1}, {label} ({root})", file=sys.stderr)
            code = _CHILD.format(here=str(HERE), sizes=sizes, writes=writes)
            done = subprocess.run([str(python), "-c", code], cwd=root, check=True, capture_output=True, text=True)
            sys.stderr.write(done.stderr)
            found[label].append(orjson.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {"rounds": rounds}
    for step, figures in found["new"][0].items():
        out[step] = {}
        for figure in figures:
            old, new = (_median([d[step][figure] for d in found[label]]) for label in ("old", "new"))
            ratio = round(old / new, 2) if isinstance(old, float) and new else None
            out[step][figure] = {"old": old, "new": new, "old_over_new": ratio}
    return out


def _median(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]  # a p50 of no writes at all
    return statistics.median(known) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 200])
    parser.add_argument("--writes", type=int, default=40)
    parser.add_argument("--against", type=Path, help="another checkout (with its own .venv) to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.against is None:
        measure_and_print(args.sizes, args.writes)
    else:
        result = compare(args.against.resolve(), args.sizes, args.writes, args.rounds)
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

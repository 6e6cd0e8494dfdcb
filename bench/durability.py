"""What durability costs a write, per method (`GITSTORE_FSYNC`; ADR 0014), in one process:

1. the flush each method pays, alone, on this disk (p50 of each, the three alternated):
   - `append+fdatasync`: one ~2 KiB record appended to a log and fdatasync'd (the journal);
   - `new file+fsync`: one ~2 KiB file written, fsynced, renamed, its folder fsynced (a loose
     object or a ref with `fsync`);
   - `syncfs`: one ~2 KiB file written unsynced, then syncfs(2) (the `syncfs` method's barrier);
2. sequential single-entity writes through the library (`put_draft`, one writer, no HTTP),
   creates then updates, each method in turn in the same run, `--rounds` times alternated:
   p50 per write and writes a second, and journal's ratio to the others;
3. with `--profile`, where one journal write's time goes (cProfile, by own time).

    python -m bench.durability [--writes 300] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from gitstore import Author, Store, content
from gitstore.storage.api import checkpoint_journal, fsync_dir, sync_file_system, use_fsync_method

ME = Author("Bench", "bench@example.org")
METHODS = ("syncfs", "fsync", "journal")
RECORD = os.urandom(2048)


def _append(folder: Path, n: int) -> list[float]:
    fd = os.open(folder / "log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    times = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, RECORD)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return times


def _new_file(folder: Path, n: int, *, durable: bool) -> list[float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        staging, path = folder / f"tmp-{i}", folder / f"file-{i}"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        os.write(fd, RECORD)
        if durable:
            os.fsync(fd)
        os.close(fd)
        os.rename(staging, path)
        if durable:
            fsync_dir(folder)
        else:
            sync_file_system(folder)
        times.append(time.perf_counter() - t)
    return times


def flushes(work: Path, n: int, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"append+fdatasync": [], "new file+fsync": [], "syncfs": []}
    for r in range(rounds):
        for name in samples:
            folder = work / f"flush-{r}-{name.replace('+', '-').replace(' ', '-')}"
            folder.mkdir()
            if name == "append+fdatasync":
                samples[name] += _append(folder, n)
            else:
                samples[name] += _new_file(folder, n, durable=name == "new file+fsync")
    return {name: {"p50_ms": _ms(statistics.median(t)), "p90_ms": _ms(_pct(t, 0.9))} for name, t in samples.items()}


def _doc(n: int, rev: int) -> dict[str, Any]:
    return {
        "type": "component",
        "title": f"Component {n} rev {rev}",
        "fields": {"weight": n % 7, "tags": ["a", "b"], "html": f"<p>Item {n}</p>\n<p>revision {rev}</p>\n"},
    }


def _writes(repo: Any, keys: list[str], rev: int) -> list[float]:
    times = []
    for n, key in enumerate(keys):
        t = time.perf_counter()
        content.put_draft(repo, key, _doc(n, rev), author=ME)
        times.append(time.perf_counter() - t)
    return times


def writes(work: Path, n: int, rounds: int) -> dict[str, Any]:
    samples: dict[str, dict[str, list[float]]] = {m: {"create": [], "update": []} for m in METHODS}
    totals: dict[str, dict[str, float]] = {m: {"create": 0.0, "update": 0.0} for m in METHODS}
    for r in range(rounds):
        for method in METHODS if r % 2 == 0 else reversed(METHODS):
            use_fsync_method(method)
            try:
                repo = Store(work / f"data-{method}-{r}").create_repository("bench")
                keys = [f"item-{r}-{i:05d}" for i in range(n)]
                for step, rev in (("create", 1), ("update", 2)):
                    t = time.perf_counter()
                    samples[method][step] += _writes(repo, keys, rev)
                    totals[method][step] += time.perf_counter() - t
                checkpoint_journal(str(repo.path))
            finally:
                use_fsync_method(None)
    result: dict[str, Any] = {}
    for method in METHODS:
        for step in ("create", "update"):
            result[f"{step} {method}"] = {
                "p50_ms": _ms(statistics.median(samples[method][step])),
                "p90_ms": _ms(_pct(samples[method][step], 0.9)),
                "per_s": round(n * rounds / totals[method][step], 1),
            }
    for step in ("create", "update"):
        j = result[f"{step} journal"]["per_s"]
        result[f"{step} ratio"] = {
            "journal/syncfs": round(j / result[f"{step} syncfs"]["per_s"], 2),
            "journal/fsync": round(j / result[f"{step} fsync"]["per_s"], 2),
        }
    return result


def profile(work: Path, n: int) -> str:
    use_fsync_method("journal")
    try:
        repo = Store(work / "data-profile").create_repository("bench")
        keys = [f"p-{i:05d}" for i in range(n)]
        _writes(repo, keys, 1)  # warm: the profile is of updates, a create's figures are alike
        profiler = cProfile.Profile()
        profiler.enable()
        _writes(repo, keys, 2)
        profiler.disable()
    finally:
        use_fsync_method(None)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-durability-"))
    try:
        result = {"flushes": flushes(work, args.writes, args.rounds), "writes": writes(work, args.writes, args.rounds)}
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        if args.profile:
            print(profile(work, args.writes))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

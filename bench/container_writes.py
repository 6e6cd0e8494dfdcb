"""Container writes at course scale (issue 21): what a PUT of a container costs on a course of
10 sections x 5 subsections x 4 units x 10 components (2,261 entities, bench.containers' tree).

    python -m bench.container_writes [--sections 10] [--runs 40]
    python -m bench.container_writes --against /path/to/other/checkout [--rounds 3]

Each step is one `content.put_draft`, in-process, fsync on (the default), timed at p50 and p90:
the course root with its manifest unchanged (a new title), the course root with one section
taken out or put back, a section and a unit with their manifests unchanged. Goal: the course
root under 5 ms (openedx-core: 32-34 ms).

`--against` runs the same steps with the other checkout's `gitstore` (a detached worktree of
the commit to compare with), alternating the two `--rounds` times in one run, each in a fresh
process and data directory, and reports old/new ratios of the medians of each round's p50 and
p90. The machine is shared and noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.containers import ME, build_course, unpinned
from gitstore import Store, content
from gitstore.repository import ContentRepository

HERE = Path(__file__).resolve().parent.parent

# Imports the other checkout's gitstore before anything else does, then this checkout's bench.
_CHILD = """import sys
sys.path.insert(0, {root!r}); import gitstore; del sys.path[0]
print("  gitstore from", gitstore.__file__, file=sys.stderr)
from bench.container_writes import measure_and_print
measure_and_print({sections}, {runs})
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, 2),
    }


def steps(repo: ContentRepository, sections: int) -> dict[str, Callable[[int], object]]:
    """Each step's write, given the run's number (a title or a manifest that differs each run)."""
    section_keys = [f"s-{s}" for s in range(sections)]
    subsections = unpinned([f"ss-0-{ss}" for ss in range(5)])
    components = unpinned([f"c-0-0-0-{c}" for c in range(10)])

    def put(key: str, kind: str, title: str, members: list[dict[str, Any]]) -> object:
        return content.put_draft(repo, key, {"type": kind, "title": title, "members": members}, author=ME)

    return {
        "course_root_manifest_unchanged": lambda n: put("course", "course", f"Course {n}", unpinned(section_keys)),
        "course_root_one_section_added_or_removed": lambda n: put(
            "course", "course", "Course", unpinned(section_keys[: sections - n % 2])
        ),
        "section_manifest_unchanged": lambda n: put("s-0", "section", f"Section {n}", subsections),
        "unit_manifest_unchanged": lambda n: put("u-0-0-0", "unit", f"Unit {n}", components),
    }


def measure(sections: int, runs: int, work: Path) -> dict[str, Any]:
    repo = Store(work / "data").create_repository("course")
    started = time.perf_counter()
    build_course(repo, sections)
    out: dict[str, Any] = {"entities": 1 + sections * 226, "build_seconds": round(time.perf_counter() - started, 2)}
    for name, write in steps(repo, sections).items():
        write(0)  # the first of a step's writes may differ in kind (a title that was never set)
        samples = []
        for n in range(1, runs + 1):
            t = time.perf_counter()
            write(n)
            samples.append(time.perf_counter() - t)
        out[name] = percentiles(samples)
        print(f"  {name:<44} p50 {out[name]['p50_ms']:7.2f} ms  p90 {out[name]['p90_ms']:7.2f} ms", file=sys.stderr)
    return out


def measure_and_print(sections: int, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-container-writes-"))
    try:
        print(orjson.dumps(measure(sections, runs, work)).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(other: Path, sections: int, runs: int, rounds: int) -> dict[str, Any]:
    """Alternate this checkout's gitstore and `other`'s, `rounds` times, a process each."""
    found: dict[str, list[dict[str, Any]]] = {"new": [], "old": []}
    for r in range(rounds):
        for label, root in (("old", other), ("new", HERE)):
            print(f"round {r + 1}, {label} ({root})", file=sys.stderr)
            code = _CHILD.format(root=str(root), sections=sections, runs=runs)
            done = subprocess.run([sys.executable, "-c", code], cwd=HERE, check=True, capture_output=True, text=True)
            sys.stderr.write(done.stderr)
            found[label].append(orjson.loads(done.stdout.strip().splitlines()[-1]))
    names = [name for name in found["new"][0] if isinstance(found["new"][0][name], dict)]
    out: dict[str, Any] = {"rounds": rounds, "runs_per_step": runs, "entities": found["new"][0]["entities"]}
    for name in names:
        row: dict[str, Any] = {}
        for figure in ("p50_ms", "p90_ms"):
            old = statistics.median(d[name][figure] for d in found["old"])
            new = statistics.median(d[name][figure] for d in found["new"])
            row[figure] = {"old": old, "new": new, "old_over_new": round(old / new, 1)}
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=10)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--against", type=Path, help="another checkout whose gitstore to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.against is None:
        measure_and_print(args.sections, args.runs)
    else:
        result = compare(args.against.resolve(), args.sections, args.runs, args.rounds)
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

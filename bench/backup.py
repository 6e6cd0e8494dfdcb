"""Backup and restore, full then incremental, to a directory: the sample repositories, and a
course of 10 sections x 5 subsections x 4 units x 10 components (2,261 entities, bench.containers).

    python -m bench.backup [--sections 10]

For each: a full backup, three writes (drafts, the first published), an incremental backup, and a
restore of the newest (the chain of both) into an empty data directory: bytes written and
seconds. Issue 24 asks that the second backup be small.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.common import run_main
from bench.containers import build_course
from gitstore import Author, Store, content
from gitstore.backup.api import DirectoryTarget, node_parts, restore, take_backup
from gitstore.publishing.api import PublishTarget
from gitstore.samples import load_samples

ME = Author("Bench", "bench@example.org")
SAMPLES = Path(__file__).resolve().parents[1] / "sample_repos"


def measure(store: Store, work: Path, writes: list[tuple[str, str]]) -> dict[str, Any]:
    """Full backup, `writes` (repository, key) as drafts with the first published, incremental
    backup, restore; the figures."""
    target = DirectoryTarget(work / "backups")
    parts = node_parts(store.data_dir)
    full = take_backup(store, target, parts=parts)
    for n, (name, key) in enumerate(writes):
        repo = store.repository(name)
        content.put_draft(repo, key, {"type": "component.html", "title": f"Bench write {n}"}, author=ME)
        if n == 0:
            content.publish(repo, [PublishTarget(key)], author=ME)
    incremental = take_backup(store, target, parts=parts)
    t = time.perf_counter()
    restored = restore(target, work / "restored", parts=parts)
    restore_seconds = time.perf_counter() - t
    return {
        "repositories": len(full.repositories),
        "refs": sum(r.refs for r in full.repositories.values()),
        "full_bytes": full.bytes_written,
        "full_seconds": full.seconds,
        "incremental_bytes": incremental.bytes_written,
        "incremental_seconds": incremental.seconds,
        "incremental_refs_changed": sum(r.refs_changed for r in incremental.repositories.values()),
        "incremental_over_full_bytes": round(incremental.bytes_written / full.bytes_written, 4),
        "restore_seconds": round(restore_seconds, 3),
        "restored_entities": sum(r.entities for r in restored.repositories.values()),
    }


def run(sections: int, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    samples = Store(work / "samples")
    load_samples(samples, SAMPLES)
    out["samples"] = measure(
        samples,
        work / "samples-run",
        [("demo-course", "bench-a"), ("gov-pages", "bench-b"), ("demo-course", "bench-c")],
    )
    print(f"  samples: {out['samples']}", file=sys.stderr)

    course = Store(work / "course")
    repo = course.create_repository("course")
    build_course(repo, sections)
    content.publish(repo, [PublishTarget("course")], author=ME)
    out["course"] = measure(
        course, work / "course-run", [("course", "bench-a"), ("course", "bench-b"), ("course", "bench-c")]
    )
    return out


def main() -> None:
    run_main(__doc__, "backup", run, "sections", 10)


if __name__ == "__main__":
    main()

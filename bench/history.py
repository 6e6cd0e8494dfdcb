"""History at depth: an entity with 10,000 versions, and blame of a 200-line field with 500.

    python -m bench.history [--versions 10000] [--blame-versions 500]

Targets (issue 3): versions page and old-version read < 2 ms, blame < 50 ms, merge < 2 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pygit2

from gitstore import Author, Store, content
from gitstore.entities import api as entities
from gitstore.history import api as history
from gitstore.history.api import _merge_documents
from gitstore.publishing import api as publishing

ME = Author("Bench", "bench@example.org")


def median_ms(fn: Any, runs: int = 50, cold: bool = True) -> float:
    times = []
    for _ in range(runs):
        if cold:
            entities.forget_cached()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 3)


def run(versions: int, blame_versions: int, work: Path) -> dict[str, Any]:
    repo = Store(work / "data").create_repository("history")
    results: dict[str, Any] = {"versions": versions, "blame_versions": blame_versions}
    t = time.perf_counter()
    content.put_draft(repo, "deep", {"type": "page", "title": "Deep", "fields": {"n": 0, "a": 0, "b": 0}}, author=ME)
    for n in range(1, versions):
        content.put_draft(
            repo, "deep", {"type": "page", "title": "Deep", "fields": {"n": n, "a": 0, "b": 0}}, author=ME
        )
        if n % 1000 == 0:
            content.publish(repo, [publishing.PublishTarget("deep")], author=ME)
            print(f"  {n} versions", file=sys.stderr)
    content.publish(repo, [publishing.PublishTarget("deep")], author=ME)
    results["build_seconds"] = round(time.perf_counter() - t, 1)

    results["first_versions_page_ms"] = median_ms(lambda: entities.list_versions(repo, "deep", limit=50))
    results["read_version_1_ms"] = median_ms(lambda: entities.get_entity(repo, "deep", version=1))
    results["diff_v1_to_latest_ms"] = median_ms(
        lambda: history.diff(repo, "deep", from_="1", to=str(versions)), runs=20
    )
    results["as_of_read_ms"] = median_ms(lambda: history.get_entity_as_of(repo, "deep", datetime.now(UTC)))

    lines = [f"Line {i} of the text." for i in range(200)]
    content.put_draft(
        repo, "text", {"type": "page", "title": "Text", "fields": {"body": "\n".join(lines) + "\n"}}, author=ME
    )
    for n in range(1, blame_versions):
        lines[n % 200] = f"Line {n % 200} edited in version {n + 1}."
        content.put_draft(
            repo, "text", {"type": "page", "title": "Text", "fields": {"body": "\n".join(lines) + "\n"}}, author=ME
        )
    results["blame_200_lines_ms"] = median_ms(lambda: history.blame(repo, "text", field="body"), runs=10)

    base = entities.get_entity(repo, "deep", state="draft")
    content.patch_draft(repo, "deep", {"fields": {"a": 1}}, author=ME)
    tip = entities.get_entity(repo, "deep", state="draft")
    git = repo.storage.git
    base_snap = entities.load_snapshot(git, pygit2.Oid(hex=base.commit))
    tip_snap = entities.load_snapshot(git, pygit2.Oid(hex=tip.commit))
    theirs = base_snap.document._replace(fields=base_snap.document.fields | {"b": 1})
    results["merge_compute_ms"] = median_ms(
        lambda: _merge_documents(git, base_snap.document, tip_snap.document, theirs), cold=False
    )
    writes = []
    for i in range(20):
        t = time.perf_counter()
        content.write_from_base(repo, "deep", base.commit, author=ME, patch={"fields": {f"extra{i}": i}})
        writes.append(time.perf_counter() - t)
    results["merged_write_ms"] = round(statistics.median(writes) * 1000, 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=10000)
    parser.add_argument("--blame-versions", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-history-"))
    try:
        print(orjson.dumps(run(args.versions, args.blame_versions, work), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

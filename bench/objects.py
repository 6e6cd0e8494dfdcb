"""What reading loose objects through gitstore's own reader costs (ADR 0005), against
libgit2 reading them itself, on the same repository:

- one object: every blob of `--entities` entities, each on a fresh handle (libgit2 keeps
  no blob in its cache, so every blob read in the service is one of these);
- one entity, cold: its commit, trees and files parsed into a snapshot (`load_snapshot`
  with the snapshot cache emptied and a fresh handle), what a first GET of an entity costs;
- one write of an entity's objects (fsync on, as in the service).

    python -m bench.objects [--entities 300]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pygit2

from bench.common import median_and_best, run_main
from gitstore import Author, Store, content
from gitstore.entities.api import document_to_files, forget_cached, load_snapshot, parse_document
from gitstore.storage.api import configure_libgit2, guarded_odb, write_files

ME = Author("Bench", "bench@example.org")
RUNS = 5


def _handles(path: Path) -> dict[str, Callable[[], pygit2.Repository]]:
    def libgit2() -> pygit2.Repository:
        return pygit2.Repository(str(path))

    def guarded() -> pygit2.Repository:
        repo = pygit2.Repository(str(path))
        repo.set_odb(guarded_odb(str(path / "objects")))
        return repo

    return {"libgit2": libgit2, "guarded": guarded}


def _per_item_us(fn: Any, items: int) -> float:
    median, _best = median_and_best(fn, RUNS)
    return round(median * 1000 / items, 1)


def run(n: int, work: Path) -> dict[str, Any]:
    configure_libgit2()
    repo = Store(work / "data").create_repository("bench")
    body = "<p>" + "A paragraph of course text. " * 30 + "</p>\n"
    tips = []
    for i in range(n):
        doc = {"type": "html", "title": f"Page {i}", "fields": {"html": body + str(i), "n": i, "notes": "x" * 200}}
        tips.append(content.put_draft(repo, f"page-{i}", doc, author=ME).entity.commit)
    commits = [pygit2.Oid(hex=t) for t in tips]
    blobs = []
    git = repo.storage.git
    for oid in commits:
        blobs += [e.id for e in git[oid].tree["fields"]]  # type: ignore[attr-defined, union-attr]
    results: dict[str, Any] = {"entities": n, "blobs": len(blobs), "us_per_blob": {}, "us_per_cold_entity": {}}
    for name, open_handle in _handles(repo.path).items():
        results["us_per_blob"][name] = _per_item_us(partial(_read_blobs, open_handle, blobs), len(blobs))
        results["us_per_cold_entity"][name] = _per_item_us(partial(_read_entities, open_handle, commits), len(commits))
    results["us_per_entity_write"] = _writes(repo.path, body)
    return results


def _read_blobs(open_handle: Callable[[], pygit2.Repository], blobs: list[pygit2.Oid]) -> None:
    handle = open_handle()
    for oid in blobs:
        handle[oid].data  # noqa: B018 -- the read is the point


def _read_entities(open_handle: Callable[[], pygit2.Repository], commits: list[pygit2.Oid]) -> None:
    forget_cached()
    handle = open_handle()
    for oid in commits:
        load_snapshot(handle, oid)


def _writes(path: Path, body: str) -> dict[str, float]:
    """The objects of one entity change (blobs, trees, a commit), fsynced, per entity."""
    found = {}
    sig = pygit2.Signature(ME.name, ME.email)
    for name, open_handle in _handles(path).items():
        handle = open_handle()
        times = []
        for i in range(50):
            doc = parse_document({"type": "html", "title": f"{name} {i}", "fields": {"html": f"{body}{name}{i}"}})
            t = time.perf_counter()
            tree = write_files(handle, document_to_files(f"w-{name}-{i}", doc, deleted=False))
            handle.create_commit(None, sig, sig, "bench", tree, [])
            times.append(time.perf_counter() - t)
        times.sort()
        found[name] = round(times[len(times) // 2] * 1e6, 1)
    return found


if __name__ == "__main__":
    run_main(__doc__, "objects", run, "entities", 300)

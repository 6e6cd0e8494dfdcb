"""Two worker processes publishing overlapping containers over and over: every acknowledged
publish is in the publish log, each made live at least what its worker had just drafted under
its course, and the published refs, the index and `main` agree.

Each worker owns one course; the two courses share two units and their components, which
both workers edit before every publish of their own course.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pygit2

from gitstore import Author, ContentRepository, Store, content
from gitstore.entities.snapshots import published_commit
from gitstore.publishing.api import PublishTarget
from gitstore.storage.api import entity_path
from gitstore.upkeep.repair import repair
from tests.conftest import ADA, fsck_strict, git

ROUNDS = 12
WORKERS = ("a", "b")
SHARED_UNITS = ["unit-shared-0", "unit-shared-1"]


def components_of(unit: str) -> list[str]:
    return [f"{unit.removeprefix('unit-')}-c{n}" for n in range(2)]


def units_of(worker: str) -> list[str]:
    return [f"unit-{worker}", *SHARED_UNITS]


def build(repo: ContentRepository) -> None:
    units = {unit for worker in WORKERS for unit in units_of(worker)}
    for unit in sorted(units):
        for key in components_of(unit):
            content.put_draft(repo, key, {"type": "component", "title": "start"}, author=ADA)
        members = [{"key": k, "pin": None} for k in components_of(unit)]
        content.put_draft(repo, unit, {"type": "unit", "title": unit, "members": members}, author=ADA)
    for worker in WORKERS:
        members = [{"key": u, "pin": None} for u in units_of(worker)]
        content.put_draft(repo, f"course-{worker}", {"type": "container", "title": "c", "members": members}, author=ADA)


def _publisher(data_dir: str, worker: str, start: Any, results: Any) -> None:
    me = Author(f"Worker {worker}", f"{worker}@example.org")
    repo = Store(data_dir).repository("demo")
    start.wait()
    try:
        for rnd in range(ROUNDS):
            drafted = {}
            for unit in units_of(worker):
                for key in components_of(unit):
                    written = content.patch_draft(repo, key, {"title": f"{worker}-{rnd}"}, author=me)
                    drafted[key] = written.entity.commit
            record = content.publish(repo, [PublishTarget(f"course-{worker}")], author=me)
            results.put(("ack", worker, record.commit, drafted))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put(("error", worker, repr(exc), {}))
    results.put(("done", worker, "", {}))


def test_two_processes_publishing_overlapping_containers_lose_no_publish(store: Store, repo: ContentRepository) -> None:
    build(repo)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(len(WORKERS)), ctx.Queue()
    procs = [ctx.Process(target=_publisher, args=(str(store.data_dir), w, start, results)) for w in WORKERS]
    for p in procs:
        p.start()
    acks, errors, done = [], [], 0
    while done < len(WORKERS):
        kind, worker, detail, drafted = results.get(timeout=120)  # detail: the publish commit, or the error
        if kind == "ack":
            acks.append((detail, drafted))
        elif kind == "error":
            errors.append(f"{worker}: {detail}")
        else:
            done += 1
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert errors == [] and len(acks) == ROUNDS * len(WORKERS)

    repo = Store(store.data_dir).repository("demo")
    report = repair(repo)
    assert not (report.rolled_forward_publish or report.reindexed_drafts or report.removed_locks)
    git_handle = repo.storage.git
    log = git(repo.path, "rev-list", "--first-parent", "refs/heads/main").split()
    live, live_after = {}, {}  # the publish log replayed: what was live after each publish
    for _, row in sorted(repo.index.publishes(limit=1000)):
        live.update({key: commit for key, commit, _, _ in row.items})
        live_after[row.commit] = dict(live)
    assert set(live_after) == set(log)  # the index's publish log is main's history
    for commit, drafted in acks:
        assert commit in live_after  # every acknowledged publish is in the log
        for key, mine in drafted.items():  # it made live what its worker drafted, or later
            went_live = pygit2.Oid(hex=live_after[commit][key])
            assert went_live == pygit2.Oid(hex=mine) or git_handle.descendant_of(went_live, pygit2.Oid(hex=mine))
    for key, commit in live.items():  # published refs, index and main's tree agree with the log
        ref = git(repo.path, "rev-parse", f"refs/published/{key}").strip()
        indexed = repo.index._db().execute("SELECT published_commit FROM entities WHERE key=?", (key,)).fetchone()
        assert commit == ref == str(published_commit(repo, key)) == indexed[0]
        assert git(repo.path, "rev-parse", f"refs/heads/main:{entity_path(key)}") == git(
            repo.path, "rev-parse", f"{ref}^{{tree}}"
        )
    assert not list(Path(repo.path).glob("refs/**/*.lock"))
    fsck_strict(repo.path)

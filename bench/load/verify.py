"""After the load, with the server stopped: every write it acknowledged is where it belongs, and
`git fsck --strict` finds nothing wrong.

Each load entity has exactly one writer (a wrk thread with one connection), so its draft branch
must read, oldest first, exactly its seed commit and then every acknowledged ETag in the order
they were acknowledged: a missing one is a lost write, an extra one a change nobody was told
about. The one exception is a last extra commit at the tip: the write wrk had sent when its time
was up, whose answer it no longer read. Every acknowledged publish must be in `main`'s history.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pygit2

from gitstore.repository import MAIN, draft_ref


def check_acknowledged(repo_path: Path, seeds: Mapping[str, str], acked: Iterable[str]) -> dict[str, Any]:
    """Compare each seeded entity's draft branch, and main, with what the server acknowledged."""
    by_ref: dict[str, list[str]] = {}
    for line in acked:
        ref, commit = line.split()
        by_ref.setdefault(ref, []).append(commit)
    git = pygit2.Repository(str(repo_path))
    lost, unacknowledged, mismatched, in_flight = [], [], [], 0
    for key, seed in seeds.items():
        expected = [seed, *by_ref.get(draft_ref(key), [])]
        branch = _first_parent_chain(git, draft_ref(key))
        if branch[: len(expected)] == expected and len(branch) <= len(expected) + 1:
            in_flight += len(branch) - len(expected)
            continue
        mismatched.append(key)
        lost += sorted(set(expected) - set(branch))
        unacknowledged += sorted(set(branch) - set(expected))
    publishes = by_ref.get(MAIN, [])
    published = {str(commit.id) for commit in git.walk(git.references[MAIN].target)}
    lost_publishes = [commit for commit in publishes if commit not in published]
    return {
        "entities": len(seeds),
        "acknowledged_writes": sum(len(commits) for ref, commits in by_ref.items() if ref != MAIN),
        "acknowledged_publishes": len(publishes),
        "lost_writes": lost,
        "lost_publishes": lost_publishes,
        "unacknowledged_commits": unacknowledged,
        "mismatched_entities": mismatched,
        "in_flight_when_stopped": in_flight,
        "ok": not (mismatched or lost_publishes),
    }


def fsck(data: Path, repos: Iterable[str]) -> dict[str, Any]:
    """`gitstore fsck` of each repository: git fsck --strict of it and of its live-only copy."""
    results = {}
    for repo in repos:
        done = subprocess.run(
            [sys.executable, "-m", "gitstore.cli", "fsck", repo, "--data", str(data), "--json"],
            capture_output=True,
            text=True,
        )
        failed = {"gitstore fsck": {"ok": False, "output": done.stderr.strip()}}
        results[repo] = orjson.loads(done.stdout) if done.stdout.strip() else failed
    return results


def fsck_clean(results: Mapping[str, Any]) -> bool:
    return all(check["ok"] for repo in results.values() for check in repo.values())


def _first_parent_chain(git: pygit2.Repository, ref: str) -> list[str]:
    """The commits of `ref` from its first to its tip."""
    chain = []
    commit = git[git.references[ref].target]
    while True:
        chain.append(str(commit.id))
        if not commit.parents:
            return chain[::-1]
        commit = commit.parents[0]

"""Containers at course scale: 10 sections x 5 subsections x 4 units x 10 components (2,261
entities), the shape of the openedx-core benchmark (shared/research/openedx-bench).

    python -m bench.containers [--sections 10]

Targets (issue 5): publish the whole tree from its root < 0.3 s, resolve the full published
tree < 50 ms. Reference on this machine, openedx-core 0.34.1: publish 1.3-1.7 s, resolve
0.73-0.92 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.common import median_and_best, run_main
from gitstore import Author, Store, content
from gitstore.containers import api as containers
from gitstore.containers.api import View
from gitstore.entities.api import DraftChange, forget_cached, parse_document
from gitstore.publishing.api import PublishTarget
from gitstore.repository import ContentRepository

ME = Author("Bench", "bench@example.org")


def timed(fn: Any, runs: int, *, cold: bool = False) -> tuple[float, float]:
    """(median, best) in milliseconds; `cold` empties the snapshot cache before each run."""
    return median_and_best(fn, runs, before=forget_cached if cold else None)


def unpinned(keys: list[str]) -> list[dict[str, Any]]:
    return [{"key": k, "pin": None} for k in keys]


def build_course(repo: ContentRepository, sections: int) -> tuple[list[str], float]:
    """The course as drafts under "course": its components' keys, and seconds the leaves took
    (bench.ui reads the same course)."""
    t = time.perf_counter()
    components = []
    for s in range(sections):
        for ss in range(5):
            for u in range(4):
                components += [f"c-{s}-{ss}-{u}-{c}" for c in range(10)]
    # Leaves go in as batches (one commit on `draft` per 200); containers one write each, as an
    # authoring tool would make them, every one checked against the manifest rules.
    for start in range(0, len(components), 200):
        chunk = components[start : start + 200]
        changes = [
            DraftChange(k, lambda _c, k=k: (parse_document({"type": "component.html", "title": k}), False))
            for k in chunk
        ]
        content.write_drafts(repo, changes, author=ME, summary=f"Import {len(chunk)} components")
    leaves = time.perf_counter() - t
    for s in range(sections):
        subsections = []
        for ss in range(5):
            units = []
            for u in range(4):
                key = f"u-{s}-{ss}-{u}"
                members = unpinned([f"c-{s}-{ss}-{u}-{c}" for c in range(10)])
                content.put_draft(repo, key, {"type": "unit", "title": key, "members": members}, author=ME)
                units.append(key)
            key = f"ss-{s}-{ss}"
            content.put_draft(repo, key, {"type": "subsection", "title": key, "members": unpinned(units)}, author=ME)
            subsections.append(key)
        key = f"s-{s}"
        content.put_draft(repo, key, {"type": "section", "title": key, "members": unpinned(subsections)}, author=ME)
    sections_keys = [f"s-{s}" for s in range(sections)]
    content.put_draft(
        repo, "course", {"type": "course", "title": "Course", "members": unpinned(sections_keys)}, author=ME
    )
    return components, leaves


def run(sections: int, work: Path) -> dict[str, Any]:
    repo = Store(work / "data").create_repository("course")
    out: dict[str, Any] = {}
    t = time.perf_counter()
    components, leaves = build_course(repo, sections)
    entities = len(components) + sections * (1 + 5 + 20) + 1
    out["entities"] = entities
    out["build_seconds"] = round(time.perf_counter() - t, 2)
    out["build_leaves_seconds"] = round(leaves, 2)
    print(f"  built {entities} entities", file=sys.stderr)

    t = time.perf_counter()
    record = content.publish(repo, [PublishTarget("course")], author=ME)
    out["publish_tree_seconds"] = round(time.perf_counter() - t, 3)
    out["publish_tree_items"] = len(record.items)

    # A second full-tree publish: every component edited first (one batch), then the root.
    changes = [
        DraftChange(k, lambda c: (c.document._replace(title=c.document.title + " v2"), False)) for k in components
    ]
    content.write_drafts(repo, changes, author=ME, summary="Edit every component")
    t = time.perf_counter()
    record = content.publish(repo, [PublishTarget("course")], author=ME)
    out["republish_tree_seconds"] = round(time.perf_counter() - t, 3)
    out["republish_tree_items"] = len(record.items)

    tree = containers.resolve_tree(repo, "course", View("published"))
    out["resolved_nodes"] = _count(tree)
    out["resolve_published_tree_ms_warm"], out["resolve_published_tree_ms_warm_best"] = timed(
        lambda: containers.resolve_tree(repo, "course", View("published")), 20
    )
    out["resolve_published_tree_ms_cold"], _ = timed(
        lambda: containers.resolve_tree(repo, "course", View("published")), 5, cold=True
    )
    out["resolve_draft_tree_ms_warm"], _ = timed(lambda: containers.resolve_tree(repo, "course", View("draft")), 20)

    target = components[len(components) // 2]
    n = [0]

    def edit_and_publish() -> None:
        n[0] += 1
        content.patch_draft(repo, target, {"title": f"edit {n[0]}"}, author=ME)
        content.publish(repo, [PublishTarget(target)], author=ME)

    out["edit_and_publish_one_component_ms"], _ = timed(edit_and_publish, 20)

    # Share one component into 20 more units, then ask where it is used.
    shared = components[0]
    for u in range(1, 21):
        s, ss, uu = (u // 20) % sections, (u // 4) % 5, u % 4
        key = f"u-{s}-{ss}-{uu}"
        content.patch_draft(
            repo,
            key,
            {"members": unpinned([f"c-{s}-{ss}-{uu}-{c}" for c in range(10)] + [shared])},
            author=ME,
        )
    out["where_used_containers"] = len({u.container for u in containers.where_used(repo, shared)})
    out["where_used_ms"], _ = timed(lambda: containers.where_used(repo, shared), 200)
    out["contains_unpublished_changes_unit_ms"], _ = timed(
        lambda: containers.resolve_tree(repo, "u-0-0-1", View("draft")).contains_unpublished_changes, 200
    )
    return out


def _count(node: containers.TreeNode) -> int:
    return 1 + sum(_count(m) for m in node.members or [])


def main() -> None:
    run_main(__doc__, "containers", run, "sections", 10)


if __name__ == "__main__":
    main()

"""Links at GOV.UK scale: a taxonomy of 20,000 entities with a 6-level parent chain, and a page
linked (`related`) from 5,000 others.

    python -m bench.links [--entities 20000]

Targets (issue): expanded links of the hub page < 20 ms warm, < 100 ms cold. Also measured:
dependents of the taxonomy root and of the hub, one edit + publish, event feed throughput.

"Cold" is a fresh process-level state: the snapshot cache emptied and the repository opened
again (a new SQLite connection, empty caches). The OS page cache stays warm.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import median_and_best, run_main
from gitstore import Author, Store, content
from gitstore.entities.api import Content, DraftChange, forget_cached, parse_document
from gitstore.events import read_events
from gitstore.links import api as links
from gitstore.publishing.api import PublishTarget
from gitstore.repository import ContentRepository

ME = Author("Bench", "bench@example.org")
BATCH = 500
HUB_LINKS = 5000
# Taxons per level below the root at 20,000 entities (3,205 + root); scaled with --entities.
LEVELS = (5, 20, 80, 300, 800, 2000)


def timed(
    fn: Callable[[ContentRepository], object], open_repo: Callable[[], ContentRepository], runs: int
) -> tuple[float, float]:
    """(median, best) in milliseconds. `open_repo` runs outside the clock: it decides warm or cold."""
    opened: list[ContentRepository] = []
    return median_and_best(lambda: fn(opened.pop()), runs, before=lambda: opened.append(open_repo()))


def level_sizes(entities: int) -> list[int]:
    # Keep a taxonomy of ~16% of the entities, every level at least as wide as the one above.
    sizes: list[int] = []
    for n in LEVELS:
        sizes.append(max(n * entities // 20000, sizes[-1] if sizes else 1))
    return sizes


@dataclass(frozen=True)
class Site:
    entities: int
    taxons: list[str]
    deepest_page: str  # its breadcrumbs pass through every level of the taxonomy
    hub_links: int  # pages linking `related` to "hub"
    build_seconds: float


def build(repo: ContentRepository, entities: int, rng: random.Random) -> Site:
    """The taxonomy and its pages as drafts (bench.ui reads the same repository)."""
    # Parents before children, and the hub before the pages that link to it: batch writes skip
    # the link-target check, so the order is what keeps the data valid.
    docs: list[tuple[str, Content]] = [("root", parse_document({"type": "taxon", "title": "Root", "base_path": "/t"}))]
    above = ["root"]
    for depth, size in enumerate(level_sizes(entities), 1):
        level = [f"t{depth}-{i}" for i in range(size)]
        for key in level:
            body = {"type": "taxon", "title": key, "base_path": f"/t/{key}", "links": {"parent": [rng.choice(above)]}}
            docs.append((key, parse_document(body)))
        above = level
    deepest_taxon = above[0]
    taxons = [key for key, _ in docs]
    pages = entities - len(taxons)
    if pages < 2:
        raise SystemExit(f"--entities {entities} leaves no room for pages after {len(taxons)} taxons")
    hub_links = min(HUB_LINKS, pages - 1)
    hub_body = {"type": "page", "title": "Hub", "base_path": "/hub", "links": {"parent": [rng.choice(taxons)]}}
    docs.append(("hub", parse_document(hub_body)))
    deepest_page = ""
    for i in range(pages - 1):
        key = f"p-{i}"
        parent = deepest_taxon if i == 0 else rng.choice(taxons)
        body_links = {"parent": [parent]} | ({"related": ["hub"]} if i < hub_links else {})
        docs.append((key, parse_document({"type": "page", "title": key, "base_path": f"/p/{i}", "links": body_links})))
        if i == 0:
            deepest_page = key
    t = time.perf_counter()
    for start in range(0, len(docs), BATCH):
        chunk = docs[start : start + BATCH]
        changes = [DraftChange(k, lambda _cur, doc=doc: (doc, False), action="create") for k, doc in chunk]
        content.write_drafts(repo, changes, author=ME, summary=f"Import {len(chunk)} entities")
    return Site(len(docs), taxons, deepest_page, hub_links, round(time.perf_counter() - t, 2))


def run(entities: int, work: Path) -> dict[str, Any]:
    rng = random.Random(42)
    data = work / "data"
    repo = Store(data).create_repository("site")

    def warm() -> ContentRepository:
        return repo

    def cold() -> ContentRepository:
        forget_cached()
        return Store(data).repository("site")

    out: dict[str, Any] = {"expanded_links_warm_target_ms": 20, "expanded_links_cold_target_ms": 100}

    site = build(repo, entities, rng)
    taxons, deepest_page, hub_links = site.taxons, site.deepest_page, site.hub_links
    out["entities"] = site.entities
    out["taxons"] = len(taxons)
    out["taxonomy_levels"] = [1, *level_sizes(entities)]
    out["build_seconds"] = site.build_seconds
    print(f"  built {site.entities} entities in {out['build_seconds']} s", file=sys.stderr)

    t = time.perf_counter()
    record = content.publish_all_drafts(repo, author=ME)
    out["publish_all_seconds"] = round(time.perf_counter() - t, 2)
    out["publish_all_items"] = len(record.items)
    print(f"  published in {out['publish_all_seconds']} s", file=sys.stderr)

    hub = links.expanded_links(repo, "hub", state="published")
    out["hub_related_from"] = len(hub.links.get("related_from", []))
    assert out["hub_related_from"] == hub_links, out["hub_related_from"]

    def expand_hub(r: ContentRepository) -> object:
        return links.expanded_links(r, "hub", state="published")

    out["expanded_links_hub_ms_warm"], out["expanded_links_hub_ms_warm_best"] = timed(expand_hub, warm, 20)
    out["expanded_links_hub_ms_cold"], out["expanded_links_hub_ms_cold_best"] = timed(expand_hub, cold, 5)

    page = links.expanded_links(repo, deepest_page, state="published")
    out["deep_page_breadcrumbs"] = len(page.breadcrumbs)
    assert len(page.breadcrumbs) == 7, [c.key for c in page.breadcrumbs]

    def expand_deep(r: ContentRepository) -> object:
        return links.expanded_links(r, deepest_page, state="published")

    out["expanded_links_deep_page_ms_warm"], _ = timed(expand_deep, warm, 20)
    out["expanded_links_deep_page_ms_cold"], _ = timed(expand_deep, cold, 5)

    # Every entity sits under the root: its dependents are all the others.
    out["dependents_root"] = len(links.dependents(repo, ["root"], state="published"))

    def root_dependents(r: ContentRepository) -> object:
        return links.dependents(r, ["root"], state="published")

    out["dependents_root_ms_warm"], _ = timed(root_dependents, warm, 10)
    out["dependents_root_ms_cold"], _ = timed(root_dependents, cold, 5)

    out["dependents_hub"] = len(links.dependents(repo, ["hub"], state="published"))

    def hub_dependents(r: ContentRepository) -> object:
        return links.dependents(r, ["hub"], state="published")

    out["dependents_hub_ms_warm"], _ = timed(hub_dependents, warm, 20)
    out["dependents_hub_ms_cold"], _ = timed(hub_dependents, cold, 5)

    n = [0]
    dependents: dict[str, int] = {}

    def edit_and_publish(key: str) -> Callable[[ContentRepository], None]:
        def go(r: ContentRepository) -> None:
            n[0] += 1
            content.patch_draft(r, key, {"title": f"{key} edit {n[0]}"}, author=ME)
            dependents[key] = len(content.publish(r, [PublishTarget(key)], author=ME).dependents)

        return go

    out["edit_and_publish_page_ms"], _ = timed(edit_and_publish(deepest_page), warm, 10)
    out["edit_and_publish_page_dependents"] = dependents[deepest_page]
    # Not asked for, but the expensive case of the same operation: 5,000 pages show the hub.
    out["edit_and_publish_hub_ms"], _ = timed(edit_and_publish("hub"), warm, 3)
    out["edit_and_publish_hub_dependents"] = dependents["hub"]

    # A fresh repository object, so the first replay also reads history into the feed table.
    feed_repo = cold()
    for name in ("first_read", "warm"):
        t = time.perf_counter()
        events, after = 0, None
        while True:
            page_ = read_events(feed_repo, after=after, limit=1000, drafts=True, with_dependents=False)
            if not page_.items:
                break
            events += len(page_.items)
            after = page_.cursor
        elapsed = time.perf_counter() - t
        out["feed_events"] = events
        out[f"feed_replay_{name}_seconds"] = round(elapsed, 2)
        out[f"feed_replay_{name}_events_per_second"] = round(events / elapsed)

    # The first 1,000 events are the taxonomy's own drafts, root first: the costly end of the feed.
    t = time.perf_counter()
    first = read_events(feed_repo, after=None, limit=1000, drafts=True, with_dependents=True)
    elapsed = time.perf_counter() - t
    out["feed_page_with_dependents_ms"] = round(elapsed * 1000, 1)
    out["feed_page_with_dependents_events_per_second"] = round(len(first.items) / elapsed)
    out["feed_page_with_dependents_total"] = sum(len(e.dependents) for e in first.items)
    return out


def main() -> None:
    run_main(__doc__, "links", run, "entities", 20000)


if __name__ == "__main__":
    main()

"""The web app's server time per page, in process (the ASGI app through Starlette's test client,
no network): on the 20,000-entity links repository (bench.links) with a 500-version entity in
it, and on the 2,261-node course (bench.containers).

    python -m bench.ui [--entities 20000]

Targets (issue 22), p50: entity page, compare and blame of a 500-version entity < 50 ms;
entities list page < 30 ms; the course tree page < 300 ms. Also measured: compare of a 1 MB
text field with a few lines changed, the publish log, and a title search over every entity.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from bench.common import run_main
from bench.containers import build_course
from bench.links import build
from gitstore import Author, Store, content
from gitstore.publishing.api import PublishTarget

ME = Author("Bench", "bench@example.org")
VERSIONS = 500
TARGETS_MS = {"entity": 50, "compare": 50, "blame": 50, "entities_list": 30, "course_tree": 300}


def p50(client: TestClient, url: str, runs: int) -> dict[str, float]:
    """Median and 90th percentile of `runs` GETs of `url`, after one untimed warm-up."""
    assert client.get(url).status_code == 200, url
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert answer.status_code == 200, url
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p90_ms": round(times[int(len(times) * 0.9) - 1], 1)}


def run(entity_count: int, work: Path) -> dict[str, Any]:
    data = work / "data"
    store = Store(data)
    site = store.create_repository("site")
    built = build(site, entity_count, random.Random(42))
    content.publish_all_drafts(site, author=ME)
    print(f"  built and published {built.entities} entities", file=sys.stderr)

    lines = [f"Line {i} of the guidance, as first written." for i in range(200)]
    doc = {"type": "page", "title": "Deep history", "fields": {"body": "\n".join(lines) + "\n"}}
    content.put_draft(site, "deep", doc, author=ME)
    for n in range(1, VERSIONS):
        lines[(n * 7) % 200] = f"Line {(n * 7) % 200} rewritten in version {n + 1}."
        content.put_draft(site, "deep", doc | {"fields": {"body": "\n".join(lines) + "\n"}}, author=ME)
        if n % 100 == 0:
            content.publish(site, [PublishTarget("deep")], author=ME)
    print(f"  wrote {VERSIONS} versions of 'deep'", file=sys.stderr)

    big = "".join(f"{i:07d} the quick brown fox jumps over the lazy dog again and again\n" for i in range(14000))
    content.put_draft(site, "big", {"type": "page", "title": "Big", "fields": {"body": big}}, author=ME)
    changed = big.replace("0007000 the quick", "0007000 the slow").replace("0013000 the lazy", "0013000 a lazy")
    content.put_draft(site, "big", {"type": "page", "title": "Big", "fields": {"body": changed}}, author=ME)

    course = store.create_repository("course")
    build_course(course, 10)
    content.publish(course, [PublishTarget("course")], author=ME)
    print("  built and published the course", file=sys.stderr)

    out: dict[str, Any] = {"entities": built.entities, "versions": VERSIONS, "targets_p50_ms": TARGETS_MS}
    settings = Settings(data_dir=data, load_samples=False, fold_seconds=0, rate_limit="")
    with TestClient(create_app(settings)) as client:
        pages = {
            "entity": "/ui/repos/site/entities/deep",
            "entity_old_version": f"/ui/repos/site/entities/deep?version={VERSIONS // 2}",
            "compare": f"/ui/repos/site/entities/deep/compare?from=1&to={VERSIONS}",
            "blame": "/ui/repos/site/entities/deep/blame?field=body",
            "entities_list": "/ui/repos/site",
            "entities_list_live": "/ui/repos/site?view=published&cursor=p-5000",
            "title_search": "/ui/repos/site?q=p-1999",
            "links_of_hub": "/ui/repos/site/entities/hub/links",
            "publish_log": "/ui/repos/site/publish-log",
            "compare_1mb_field": "/ui/repos/site/entities/big/compare?from=1&to=2",
            "course_tree": "/ui/repos/course/entities/course/tree",
            "course_tree_draft": "/ui/repos/course/entities/course/tree?state=draft",
        }
        for name, url in pages.items():
            runs = 10 if name.startswith(("course", "links_of_hub", "compare_1mb")) else 30
            out[name] = p50(client, url, runs)
            print(f"  {name}: {out[name]}", file=sys.stderr)
        out["html_bytes"] = {name: len(client.get(url).content) for name, url in pages.items()}
    out["within_targets"] = {name: out[name]["p50_ms"] < target for name, target in TARGETS_MS.items()}
    return out


def main() -> None:
    run_main(__doc__, "ui", run, "entities", 20000)


if __name__ == "__main__":
    main()

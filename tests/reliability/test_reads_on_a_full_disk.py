"""Reads on a full disk, for real (the 4 MiB tmpfs of test_disk_full): every read answers as it
would with room, and none writes an object. What reads keep as derived caches (the event feed's
rows, the fold of waiting drafts into `draft`) is computed and served without being stored.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore.entities.draft_branch import folded_draft_head
from tests.reliability.test_disk_full import fill, page, small_disk

__all__ = ["small_disk"]  # the fixture, shared with test_disk_full

pytestmark = pytest.mark.timeout(120)

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def objects(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in (repo / "objects").rglob("*") if p.is_file())


def test_every_read_answers_on_a_full_disk_and_writes_no_object(small_disk: Path) -> None:
    rng = random.Random(11)
    data = small_disk / "data"
    # No background folds: what the requests below see depends on them alone.
    settings = Settings(data_dir=data, load_samples=False, fold_seconds=0, housekeeping_seconds=0)
    with TestClient(create_app(settings)) as http:
        http.post("/repos", json={"name": "demo"}).raise_for_status()
        http.put("/repos/demo/entities/live", json=page(rng, "Live")).raise_for_status()
        http.post("/repos/demo/entities/live/publish").raise_for_status()
        http.patch("/repos/demo/entities/live", json={"title": "Edited"}, headers=MERGE_PATCH).raise_for_status()
        http.put("/repos/demo/entities/new", json=page(rng, "New")).raise_for_status()  # never published
        store = http.app.state.store  # type: ignore[attr-defined]
        folded_draft_head(store.repository("demo"))  # folds what waits into `draft`
        # Events the feed has not read yet: recording them is what the read would write.
        http.put("/repos/demo/entities/later", json=page(rng, "Later")).raise_for_status()
        folded_draft_head(store.repository("demo"))
        repo = data / "demo.git"
        before = objects(repo)

        filler = fill(small_disk)
        reads = {
            # what publishing `new` would change: a diff from nothing, against the empty tree
            "diff from nothing": ("/entities/new/diff", {}),
            "patch from nothing": ("/entities/new/diff", {"Accept": "text/x-diff"}),
            "diff": ("/entities/live/diff", {}),
            "patch": ("/entities/live/diff", {"Accept": "text/x-diff"}),
            "blame": ("/entities/live/blame?field=html", {}),
            "versions": ("/entities/live/versions", {}),
            "events": ("/events", {}),
            "latest event": ("/events?after=latest", {}),
            "draft listing": ("/entities?state=draft", {}),
            "live listing": ("/entities", {}),
            "draft": ("/entities/later?state=draft", {}),
            "activity": ("/activity", {}),
            "publish log": ("/publish-log", {}),
            "draft export": ("/export?state=draft", {}),
        }
        answers = {}
        for what, (path, headers) in reads.items():
            answer = http.get(f"/repos/demo{path}", headers=headers)
            assert answer.status_code == 200, f"{what}: {answer.text}"
            answers[what] = answer
        assert answers["diff from nothing"].json()["from_commit"] is None
        assert "new file mode 100644" in answers["patch from nothing"].text
        served = [(e["id"], e["key"], e["kind"]) for e in answers["events"].json()["items"]]
        assert [key for _, key, _ in served] == ["live", "live", "live", "new", "later"]
        assert answers["latest event"].json()["cursor"] == answers["events"].json()["cursor"]
        assert objects(repo) == before  # a read never writes an object

        filler.unlink()
        # With room again, the feed records the same events under the same ids: the cursors
        # handed out on the full disk stay valid.
        again = http.get("/repos/demo/events").json()
        assert [(e["id"], e["key"], e["kind"]) for e in again["items"]] == served
        assert http.get("/repos/demo/events", params={"after": served[2][0]}).json()["items"][0]["key"] == "new"

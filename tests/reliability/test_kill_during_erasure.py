"""kill -9 during an erasure: after the restart's repair it is all done or not started."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gitstore.erasure
from gitstore import Store, content
from gitstore.entities import api as entities
from gitstore.erasure import ERASED_TITLE, erase, erasures, finish_erasures
from gitstore.links import api as links
from gitstore.publishing.mirror import ensure_live_mirror
from tests.conftest import ADA, fsck_strict, object_bytes
from tests.reliability.children import ROOT, refs_of

RUNS = 6


def build(data: Path) -> None:
    repo = Store(data).create_repository("demo")
    for n in range(30):
        content.put_draft(repo, f"page-{n}", {"type": "page", "title": f"Page {n}"}, author=ADA)
    for n in range(6):
        content.put_draft(
            repo,
            "secret",
            {"type": "page", "title": f"SECRETTITLE {n}", "fields": {"body": f"SECRETBODY {n}\n"}},
            author=ADA,
        )
        content.publish_all_drafts(repo, author=ADA)
    pin = entities.get_entity(repo, "secret", version=3).commit
    content.put_draft(
        repo, "unit", {"type": "container", "title": "Unit", "members": [{"key": "secret", "pin": pin}]}, author=ADA
    )
    content.publish_all_drafts(repo, author=ADA)
    ensure_live_mirror(repo)


def kill_during_erasure(data: Path, seed: int, earliest: float, latest: float) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.erasure_child", str(data), str(seed), str(earliest), str(latest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr


def test_kill_9_during_an_erasure_leaves_it_done_or_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "template"
    build(template)
    # When the commit point comes and how long the whole takes here, so that half the kills
    # land before the commit point and half after it, while the erasure finishes.
    timing = tmp_path / "timing"
    shutil.copytree(template, timing)
    start = time.monotonic()
    committed: list[float] = []
    record = gitstore.erasure.write_settings

    def timed(*args: object, **kwargs: object) -> None:
        committed.append(time.monotonic() - start)
        record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitstore.erasure, "write_settings", timed)
    erase(Store(timing).repository("demo"), "secret", author=ADA, reason="timing")
    monkeypatch.undo()
    commit_point, whole = committed[0], time.monotonic() - start
    outcomes = {"not started": 0, "finished at restart": 0, "done": 0}
    for run in range(RUNS):
        data = tmp_path / f"run-{run}"
        shutil.copytree(template, data)
        before = refs_of(data / "demo.git")
        window = (0.0, commit_point) if run % 2 == 0 else (commit_point, whole * 1.2)
        kill_during_erasure(data, run, *window)
        store = Store(data)
        finished = finish_erasures(store.repository("demo"))
        store.repair_all()  # the restart
        repo = store.repository("demo")
        everything = object_bytes(repo.path) + object_bytes(ensure_live_mirror(repo))
        draft = entities.get_entity(repo, "secret", state="draft")
        if erasures(repo):
            outcomes["finished at restart" if finished else "done"] += 1
            assert b"SECRETTITLE" not in everything and b"SECRETBODY" not in everything, f"run {run}"
            assert (draft.title, entities.get_entity(repo, "secret").title) == (ERASED_TITLE, ERASED_TITLE)
        else:
            outcomes["not started"] += 1
            assert refs_of(repo.path) == before, f"run {run}"
            assert draft.title == "SECRETTITLE 5" and b"SECRETBODY 2" in everything
        assert not list((repo.path / "gitstore").glob("erasure-*.plan"))
        # either way the rest reads and the unit's pin resolves
        assert entities.get_entity(repo, "page-7").title == "Page 7"
        assert links.expanded_links(repo, "unit", state="published").key == "unit"
        fsck_strict(repo.path)
        fsck_strict(ensure_live_mirror(repo))
        shutil.rmtree(data)
    print(f"kill -9 during erasure: {RUNS} runs, {outcomes}, commit point {commit_point:.2f} s of {whole:.2f} s")

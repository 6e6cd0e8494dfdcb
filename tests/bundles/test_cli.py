"""`gitstore import`, `export` and `stats`, end to end in a temporary data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from gitstore import ContentRepository, Store
from gitstore.entities import api as entities
from tests.bundles.conftest import SOURCE_KEYS, export, ndjson, tar_gz
from tests.test_cli import ROOT, gitstore


def test_export_then_import_into_a_new_repository(tmp_path: Path, source: ContentRepository, store: Store) -> None:
    data = str(store.data_dir)
    bundle = tmp_path / "course.tar.gz"
    done = gitstore("export", "--repo", "source", "--data", data, "-o", str(bundle), "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["entities"] == len(SOURCE_KEYS)
    assert bundle.read_bytes() == export(source)
    assert gitstore("init", "copy", "--data", data).returncode == 0

    dry = gitstore("import", str(bundle), "--repo", "copy", "--data", data, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert orjson.loads(dry.stdout)["created"] == SOURCE_KEYS
    assert store.repository("copy").index.counts()["entities"] == 0

    done = gitstore("import", str(bundle), "--repo", "copy", "--data", data, "--publish")
    assert done.returncode == 0, done.stderr
    assert f"imported {len(SOURCE_KEYS)} entities: {len(SOURCE_KEYS)} new" in done.stdout
    assert "2 pinned versions added" in done.stdout and "published 13 entities" in done.stdout
    assert entities.get_entity(store.repository("copy"), "course").title == "Course"

    piped = subprocess.run(
        [sys.executable, "-m", "gitstore.cli", "export", "--repo", "copy", "--data", data, "--format", "ndjson"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stdout == export(store.repository("copy"), "application/x-ndjson")

    stats = gitstore("stats", "copy", "--data", data, "--json")
    assert stats.returncode == 0, stats.stderr
    figures = orjson.loads(stats.stdout)
    assert (figures["entities"], figures["live"], figures["versions"]) == (13, 13, 15)
    assert figures["loose_objects"] > 0 and figures["disk_bytes"] > figures["loose_objects_bytes"]


def test_exit_codes_say_what_went_wrong(tmp_path: Path, store: Store) -> None:
    data = str(store.data_dir)
    store.create_repository("site")
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(ndjson([{"key": "a", "document": {"type": "page"}}, {"key": "b", "document": {"title": "B"}}]))
    done = gitstore("import", str(bad), "--repo", "site", "--data", data)
    assert done.returncode == 1
    assert "the bundle has 2 problem(s)" in done.stderr and "line 1 [a] document.title: Field required" in done.stderr

    hostile = tmp_path / "hostile.tgz"
    hostile.write_bytes(tar_gz({"../../escape": b"x"}))
    done = gitstore("import", str(hostile), "--repo", "site", "--data", data)
    assert done.returncode == 2 and "reaches outside the bundle" in done.stderr

    good = tmp_path / "good.jsonl"
    good.write_bytes(ndjson([{"key": "a", "document": {"type": "page", "title": "A"}}]))
    done = gitstore("import", str(good), "--repo", "site", "--data", data, "--if-match", "0" * 40)
    assert done.returncode == 3 and "no draft yet, not at 0000" in done.stderr
    assert gitstore("import", str(good), "--repo", "site", "--data", data).returncode == 0

    unknown = tmp_path / "bundle.rar"
    unknown.write_bytes(b"?")
    assert gitstore("import", str(unknown), "--repo", "site", "--data", data).returncode == 2
    assert gitstore("import", str(good), "--repo", "nowhere", "--data", data).returncode == 2

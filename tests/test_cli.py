"""The gitstore command, end to end in a temporary data directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from gitstore import Store
from gitstore.entities import api as entities
from tests.conftest import ADA

ROOT = Path(__file__).resolve().parents[1]


def gitstore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitstore.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_init_then_reindex_rebuilds_the_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert gitstore("init", "site", "--data", str(data)).returncode == 0
    repo = Store(data).repository("site")
    entities.put_draft(repo, "home", {"type": "page", "title": "Home"}, author=ADA)
    repo.index.clear()
    done = gitstore("reindex", "site", "--data", str(data), "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {"repo": "site", "entities": 1}
    assert repo.index.draft_commit_of("home") is not None


def test_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    done = gitstore("reindex", "missing", "--data", str(tmp_path))
    assert done.returncode == 2 and "no repository 'missing'" in done.stderr
    assert gitstore("init", "Bad Name", "--data", str(tmp_path)).returncode == 2


def test_repair_reports_as_json(tmp_path: Path) -> None:
    assert gitstore("init", "site", "--data", str(tmp_path)).returncode == 0
    done = gitstore("repair", "--data", str(tmp_path), "--json")
    assert done.returncode == 0 and "site" in orjson.loads(done.stdout)


def test_clone_url_and_fsck(tmp_path: Path) -> None:
    assert gitstore("init", "site", "--data", str(tmp_path)).returncode == 0
    url = gitstore("clone-url", "site", "--data", str(tmp_path), "--base-url", "https://cms.example.org/")
    assert url.stdout.strip() == "https://cms.example.org/git/site.git"
    live = gitstore("clone-url", "site", "--live", "--data", str(tmp_path), "--base-url", "https://cms.example.org")
    assert live.stdout.strip() == "https://cms.example.org/git/live/site.git"
    repo = Store(tmp_path).repository("site")
    entities.put_draft(repo, "home", {"type": "page", "title": "Home"}, author=ADA)
    done = gitstore("fsck", "site", "--data", str(tmp_path), "--json")
    assert done.returncode == 0 and orjson.loads(done.stdout)["repository"]["ok"] is True


def test_prune_dry_run_then_prune(tmp_path: Path) -> None:
    assert gitstore("init", "site", "--data", str(tmp_path)).returncode == 0
    repo = Store(tmp_path).repository("site")
    entities.put_draft(repo, "scratch", {"type": "page", "title": "Scratch"}, author=ADA)
    entities.delete_entity(repo, "scratch", author=ADA)
    dry = gitstore("prune", "site", "--data", str(tmp_path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert orjson.loads(dry.stdout)["pruned_entities"] == ["scratch"]
    done = gitstore("prune", "site", "--data", str(tmp_path), "--grace", "0")
    assert done.returncode == 0 and "pruned 1 entities" in done.stdout and "pruned scratch" in done.stdout
    assert repo.storage.git.references.get("refs/drafts/scratch") is None

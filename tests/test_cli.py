"""The gitstore command, end to end in a temporary data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import typer

from gitstore import Store, content
from gitstore.cli import app
from tests.bundles.conftest import export, read_tar
from tests.conftest import ADA

ROOT = Path(__file__).resolve().parents[1]


def gitstore(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitstore.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | (env or {}),
    )


def test_init_then_reindex_rebuilds_the_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert gitstore("init", "site", "--data", str(data)).returncode == 0
    repo = Store(data).repository("site")
    content.put_draft(repo, "home", {"type": "page", "title": "Home"}, author=ADA)
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
    content.put_draft(repo, "home", {"type": "page", "title": "Home"}, author=ADA)
    done = gitstore("fsck", "site", "--data", str(tmp_path), "--json")
    assert done.returncode == 0 and orjson.loads(done.stdout)["repository"]["ok"] is True


def test_prune_dry_run_then_prune(tmp_path: Path) -> None:
    assert gitstore("init", "site", "--data", str(tmp_path)).returncode == 0
    repo = Store(tmp_path).repository("site")
    content.put_draft(repo, "scratch", {"type": "page", "title": "Scratch"}, author=ADA)
    content.delete_entity(repo, "scratch", author=ADA)
    dry = gitstore("prune", "site", "--data", str(tmp_path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert orjson.loads(dry.stdout)["pruned_entities"] == ["scratch"]
    done = gitstore("prune", "site", "--data", str(tmp_path), "--grace", "0")
    assert done.returncode == 0 and "pruned 1 entities" in done.stdout and "pruned scratch" in done.stdout
    assert repo.storage.git.references.get("refs/drafts/scratch") is None


def test_version_and_short_help() -> None:
    version = gitstore("--version")
    assert (version.returncode, version.stdout.split()[0]) == (0, "gitstore") and version.stdout.split()[1][0].isdigit()
    for args in (["-h"], ["export", "-h"], ["token", "-h"], ["token", "create", "-h"]):
        shown = gitstore(*args)
        assert shown.returncode == 0 and "Usage:" in shown.stdout, args


def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command of the (typer's own click) group, by its full name."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found |= commands(command, f"{prefix}{name} ")
        else:
            found[prefix + name] = command
    return found


def test_every_command_names_its_repository_first_and_answers_json() -> None:
    every = commands(typer.main.get_group(app))
    assert len(every) > 15
    for name, command in every.items():
        options = {opt for param in command.params for opt in param.opts}
        assert name == "serve" or "--json" in options, name  # serve prints logs, not an answer
        arguments = [param.name for param in command.params if param.param_type_name == "argument"]
        if "repo" in arguments:
            assert arguments[0] == "repo", name
        visible = {opt for param in command.params if not getattr(param, "hidden", False) for opt in param.opts}
        assert "--repo" not in visible, name


def test_import_and_export_name_the_repository_first_and_still_take_repo(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    for name in ("site", "copy", "old"):
        assert gitstore("init", name, "--data", data, "--json").returncode == 0
    content.put_draft(
        Store(tmp_path / "data").repository("site"), "home", {"type": "page", "title": "Home"}, author=ADA
    )
    bundle = tmp_path / "site.tar.gz"
    exported = gitstore("export", "site", "--data", data, "-o", str(bundle), "--json")
    assert exported.returncode == 0 and orjson.loads(exported.stdout)["entities"] == 1
    imported = gitstore("import", "copy", str(bundle), "--data", data, "--json")
    assert imported.returncode == 0 and orjson.loads(imported.stdout)["created"] == ["home"]
    old = gitstore("import", str(bundle), "--repo", "old", "--data", data)  # the deprecated spelling
    assert old.returncode == 0 and "deprecated" in old.stderr
    twice = gitstore("import", "copy", str(bundle), "--repo", "old", "--data", data)
    assert twice.returncode == 2 and twice.stderr.count("\n") == 1


def test_importing_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert gitstore("init", "site", "--data", str(tmp_path)).returncode == 0
    for args in (
        ["import", "site", str(tmp_path / "missing.tgz")],
        ["import", str(tmp_path / "missing.tgz"), "--repo", "site"],
    ):
        done = gitstore(*args, "--data", str(tmp_path))
        lines = [line for line in done.stderr.splitlines() if not line.startswith("warning:")]
        assert (done.returncode, len(lines)) == (2, 1), done.stderr
        assert lines[0] == f"error: {tmp_path / 'missing.tgz'}: No such file or directory"
    assert Store(tmp_path).repository("site").index.unfolded_mark() is None


def test_a_bundle_directory_imports_like_its_archive(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert gitstore("init", "course", "--data", data).returncode == 0
    folder = ROOT / "sample_repos" / "demo-course" / "bundle"
    done = gitstore("import", "course", str(folder), "--data", data, "--json")
    assert done.returncode == 0, done.stderr
    kept = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert read_tar(export(Store(tmp_path / "data").repository("course"), state="draft")) == kept


def test_clone_url_takes_the_base_url_from_the_environment(tmp_path: Path) -> None:
    assert gitstore("init", "site", "--data", str(tmp_path)).returncode == 0
    url = gitstore(
        "clone-url", "site", "--data", str(tmp_path), "--json", env={"GITSTORE_BASE_URL": "https://cms.example.org/"}
    )
    assert orjson.loads(url.stdout) == {"repo": "site", "url": "https://cms.example.org/git/site.git"}


def dockerfile() -> tuple[dict[str, str], list[str]]:
    """The image's environment and command, as the Dockerfile gives them."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    [env] = [line.split(None, 1)[1] for line in text.splitlines() if line.startswith("ENV ")]
    [cmd] = [orjson.loads(line.split(None, 1)[1]) for line in text.splitlines() if line.startswith("CMD ")]
    return dict(pair.split("=", 1) for pair in env.split()), cmd


def test_the_image_loads_no_samples_and_starts_only_once_a_token_exists(tmp_path: Path) -> None:
    env, cmd = dockerfile()
    assert cmd[0] == "gitstore" and env["GITSTORE_SAMPLES"] == "0"
    data = tmp_path / "data"
    env = env | {"GITSTORE_DATA": str(data), "GITSTORE_SAMPLES_DIR": str(ROOT / "sample_repos")}
    refused = gitstore(*cmd[1:], env=env)
    assert refused.returncode == 2 and "gitstore token create" in refused.stderr
    assert not data.exists() or not list(data.glob("*.git"))

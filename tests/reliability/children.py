"""Running a child process that SIGKILLs itself partway through its writes, as the kill -9
tests do, and reading back what it acknowledged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]


def run_until_killed(module: str, data_dir: Path, seed: int, env: dict[str, str] | None = None) -> list[str]:
    """Run `python -m module data_dir seed`; the lines it printed, each one acknowledgement."""
    child = subprocess.run(
        [sys.executable, "-m", module, str(data_dir), str(seed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert child.returncode == -9, child.stderr  # it was killed, not crashed
    return child.stdout.splitlines()


def refs_of(path: Path) -> dict[str, str]:
    """Every ref of the repository at `path`, with the object it points at."""
    listed = git(path, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in listed.splitlines())

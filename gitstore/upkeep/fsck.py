"""Finding damage without hanging: truncated, garbled and missing objects, and dangling refs.

libgit2 1.9.7 hangs on a truncated loose object, and so does any pygit2 walk that reaches one,
so libgit2 reads nothing here. Every loose object file is inflated and hashed by `read_loose`;
git's own `fsck --strict` (which fails fast) checks the packs, what every ref reaches and the
refs themselves, and names where each missing or unreadable object is used
(`refs/drafts/intro~2:fields/html.txt`), which is how damage is traced to entities.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from gitstore.errors import CorruptObject
from gitstore.publishing.api import live_mirror_path
from gitstore.repository import ContentRepository
from gitstore.storage.api import read_loose

__all__ = ["DamagedObject", "DanglingRef", "FsckReport", "check_git_directory", "fsck"]

_HEX = re.compile(r"[0-9a-f]{38}")
_MISSING = re.compile(r"^missing \w+ ([0-9a-f]{40})(?: \((.+)\))?$")
_DANGLING = re.compile(r"^error: (\S+): invalid sha1 pointer ([0-9a-f]{40})$")
# Where a name puts an object: in an entity's own history, or in its subtree of main or draft.
_ENTITY = re.compile(r"^refs/(?:drafts|published)/([^~^:]+)|^refs/heads/\w+[~^0-9]*:[0-9a-f]{2}/([^/]+)/")


@dataclass(frozen=True, slots=True)
class DamagedObject:
    oid: str
    problem: str  # truncated, not-zlib, bad-header, hash-mismatch, missing
    used_by: tuple[str, ...]  # git's names for it; empty if nothing reaches it
    entities: tuple[str, ...]  # keys of the entities those names belong to


@dataclass(frozen=True, slots=True)
class DanglingRef:
    ref: str
    target: str  # an object that is not in the repository


@dataclass
class FsckReport:
    loose_objects: int = 0
    damaged: list[DamagedObject] = field(default_factory=list)
    dangling_refs: list[DanglingRef] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # anything else `git fsck --strict` reported

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.dangling_refs or self.other)


def fsck(repo: ContentRepository) -> dict[str, FsckReport]:
    """Check the repository and its live-only copy (when there is one)."""
    reports = {"repository": check_git_directory(repo.path)}
    live = live_mirror_path(repo)
    if (live / "HEAD").is_file():
        reports["live"] = check_git_directory(live)
    return reports


def check_git_directory(path: Path) -> FsckReport:
    report = FsckReport()
    problems = _scan_loose_objects(path / "objects", report)
    names: dict[str, list[str]] = {}
    for line in _git_fsck(path):
        if line.startswith("notice:"):
            continue
        if missing := _MISSING.match(line):
            oid, name = missing.groups()
            problems.setdefault(oid, "missing")
            names.setdefault(oid, []).extend([name] if name else [])
        elif dangling := _DANGLING.match(line):
            report.dangling_refs.append(DanglingRef(*dangling.groups()))
        elif not _explained(line, problems):
            report.other.append(line)
    for oid, problem in sorted(problems.items()):
        used_by = tuple(sorted(set(names.get(oid, ()))))
        report.damaged.append(DamagedObject(oid, problem, used_by, _entities(used_by)))
    return report


def _scan_loose_objects(objects: Path, report: FsckReport) -> dict[str, str]:
    problems = {}
    for fan in sorted(os.listdir(objects)):
        if len(fan) != 2 or not (objects / fan).is_dir():
            continue
        for rest in os.listdir(objects / fan):
            if not _HEX.fullmatch(rest):
                continue  # a writer's temporary file
            report.loose_objects += 1
            try:
                read_loose(str(objects / fan / rest), fan + rest)
            except CorruptObject as exc:
                problems[fan + rest] = exc.extra["problem"]
            except FileNotFoundError:
                report.loose_objects -= 1  # packed and pruned while we looked
    return problems


def _git_fsck(path: Path) -> list[str]:
    done = subprocess.run(
        ["git", "--git-dir", str(path), "fsck", "--strict", "--no-dangling", "--name-objects", "--no-progress"],
        capture_output=True,
        text=True,
    )
    return [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def _explained(line: str, problems: dict[str, str]) -> bool:
    """Whether a line of git's only restates damage already found (it reports one damaged
    object in several lines, and a broken link as a pair: "broken link from ..." "to ...")."""
    if line.startswith(("broken link from", "to ")):
        return True  # its target is reported again as "missing"
    return any(oid in line or f"{oid[:2]}/{oid[2:]}" in line for oid in problems)


def _entities(names: tuple[str, ...]) -> tuple[str, ...]:
    found = set()
    for name in names:
        if match := _ENTITY.match(name):
            found.add(match.group(1) or match.group(2))
    return tuple(sorted(found))

"""git bundles, written from a ref snapshot and read back with git itself.

A bundle (git's v2 format) is a header, the refs it carries and the commits it needs the
reader to have already (its prerequisites), then a pack. `git bundle create` can only name
refs as they are now; a backup names them as they were in its snapshot, so the header is
written here and the pack by `git pack-objects`, with the same arguments `git bundle create`
passes it. The result is a plain bundle: `git bundle verify`, `git bundle list-heads` and
`git clone` read it, and restoring it needs nothing of gitstore.

An incremental bundle is thin: against the previous backup's ref tips (`have`), it carries only
the objects those do not reach, and its deltas may use them as bases. Its prerequisites are the
boundary commits, as `git bundle create` computes them, plus any new tip the previous ones
reach already (a ref moved back, or a new ref to an old commit), so that `git bundle
unbundle` refuses it in a repository that lacks any of them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

__all__ = ["apply_bundle", "check_connected", "write_bundle"]

_HEADER = b"# v2 git bundle\n"


def write_bundle(git_dir: Path, refs: Mapping[str, str], have: Iterable[str], out: Path) -> int:
    """Write a bundle of `refs` (name -> commit id) to `out`, thin against the commits of
    `have`; returns its size in bytes. The objects must stay in `git_dir` until it returns
    (the caller holds the housekeeping lock, which every remover of objects takes)."""
    wants = sorted(set(refs.values()))
    haves = sorted(set(have))
    revs = "".join(f"{oid}\n" for oid in wants) + "".join(f"^{oid}\n" for oid in haves)
    prerequisites = _prerequisites(git_dir, wants, revs) if haves else []
    header = (
        _HEADER
        + "".join(
            [f"-{oid}\n" for oid in prerequisites] + [f"{refs[name]} {name}\n" for name in sorted(refs)] + ["\n"]
        ).encode()
    )
    thin = ["--thin"] if haves else []
    with open(out, "wb") as file:
        file.write(header)
        file.flush()
        _git(git_dir, "pack-objects", "--stdout", "--revs", "--delta-base-offset", "-q", *thin, stdin=revs, out=file)
        return file.tell()


def apply_bundle(git_dir: Path, bundle: Path) -> dict[str, str]:
    """Add a bundle's objects to the repository at `git_dir` (refs untouched); the refs its
    header names. git checks the prerequisites are there and indexes the pack (every object
    hashed, thin deltas completed from the repository). Raises subprocess.CalledProcessError."""
    listed = _git(git_dir, "bundle", "unbundle", str(bundle))
    refs = {}
    for line in listed.splitlines():
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs


def check_connected(git_dir: Path) -> None:
    """Every object the refs reach is there. Raises subprocess.CalledProcessError."""
    _git(git_dir, "fsck", "--connectivity-only", "--no-dangling", "--no-progress")


def _prerequisites(git_dir: Path, wants: list[str], revs: str) -> list[str]:
    walked = _git(git_dir, "rev-list", "--boundary", "--stdin", stdin=revs).split()
    new = {line for line in walked if not line.startswith("-")}
    boundary = {line[1:] for line in walked if line.startswith("-")}
    return sorted(boundary | {oid for oid in wants if oid not in new})


def _git(git_dir: Path, *args: str, stdin: str = "", out: BinaryIO | None = None) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        input=stdin.encode(),
        stdout=out if out is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    )
    return "" if out is not None else done.stdout.decode()

"""A backup's manifest: what it holds, what it builds on, and the sha256 of every file.

    {"format": "gitstore-backup/1", "id": "20260515T101112.123456Z", "created_at": "...",
     "parent": "<id>" | null, "parent_manifest_sha256": "<hex>" | null, "gitstore": "0.1.0",
     "repositories": {"<name>": {"full": true, "description": "...",
                                 "refs": {"refs/heads/main": "<oid>", ...}, "deleted_refs": [],
                                 "ref_count": 12, "refs_sha256": "<hex>",
                                 "bundle": "repos/<name>/objects.bundle" | null,
                                 "relay": "repos/<name>/relay.sqlite3" | null}},
     "parts": {"credentials": ["parts/credentials/credentials.json"]},
     "files": {"<path>": {"sha256": "<hex>", "bytes": 123, "backup": "<id that stores it>"}}}

A repository entry is `full` (its `refs` are every ref, its bundle every object) or builds on
the parent's entry (its `refs` are the refs set or moved since, `deleted_refs` those gone, its
bundle the objects new since, against the parent's ref tips). Replaying entries from the last
full one gives the ref set, which must hash to `refs_sha256`: the digest of the lines
`git for-each-ref --format='%(objectname) %(refname)'` prints. A file whose bytes equal the
parent's copy is not stored again: its entry names the backup that holds it.

The manifest names its parent's manifest by sha256, so a chain cannot be spliced. Everything
read from a manifest is checked before use (names, paths, ids): a damaged or hostile one is a
DamagedBackup, never a path outside the restore's staging folder.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gitstore.backup.targets import BACKUP_ID, MANIFEST, Target
from gitstore.errors import DamagedBackup, InvalidName
from gitstore.names import validate_repo_name

__all__ = [
    "FORMAT",
    "FileEntry",
    "Manifest",
    "RepositoryEntry",
    "chain_of",
    "file_sha256",
    "load_manifest",
    "ref_set",
    "refs_digest",
]

FORMAT = "gitstore-backup/1"
_OID = re.compile(r"[0-9a-f]{40}")
_PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REF = re.compile(r"refs/[^\s\x00-\x1f\\]+")


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int
    backup: str  # the backup whose folder holds it: this one, or an earlier one with the same bytes


@dataclass(frozen=True)
class RepositoryEntry:
    full: bool
    description: str
    refs: dict[str, str]
    deleted_refs: list[str]
    ref_count: int
    refs_sha256: str
    bundle: str | None
    relay: str | None


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    parent: str | None
    parent_manifest_sha256: str | None
    gitstore: str
    repositories: dict[str, RepositoryEntry]
    parts: dict[str, list[str]]
    files: dict[str, FileEntry]
    format: str = FORMAT
    #: sha256 of the manifest's own bytes as read (not written into it).
    sha256: str = field(default="", compare=False)

    def to_bytes(self) -> bytes:
        data = asdict(self)
        del data["sha256"]
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def refs_digest(refs: Mapping[str, str]) -> str:
    """sha256 of the ref set as `git for-each-ref --format='%(objectname) %(refname)'` lists it."""
    lines = "".join(f"{refs[name]} {name}\n" for name in sorted(refs, key=str.encode))
    return hashlib.sha256(lines.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(target: Target, backup_id: str) -> Manifest:
    """The manifest of `backup_id`, checked. Raises DamagedBackup naming it."""
    where = f"{backup_id}/{MANIFEST}"
    try:
        raw = target.read(backup_id, MANIFEST)
    except FileNotFoundError:
        raise DamagedBackup(f"{where} is missing", file=where) from None
    try:
        return _parse(raw, backup_id)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, InvalidName) as exc:
        raise DamagedBackup(f"{where} is damaged or truncated ({exc})", file=where) from None


def chain_of(target: Target, newest: str, names: Iterable[str]) -> list[Manifest]:
    """The manifests from `newest` back to the last one in which each repository of `names`
    is full, oldest first: what it takes to rebuild those repositories as `newest` saw them.
    Raises DamagedBackup if a link is missing, damaged or not the manifest its child named."""
    chain = [load_manifest(target, newest)]
    waiting = {n for n in names if not chain[0].repositories[n].full}
    while waiting:
        child = chain[-1]
        if child.parent is None:
            raise DamagedBackup(f"{child.id}/{MANIFEST} builds on nothing yet has incremental entries", file=child.id)
        parent = load_manifest(target, child.parent)
        if parent.sha256 != child.parent_manifest_sha256:
            where = f"{parent.id}/{MANIFEST}"
            raise DamagedBackup(f"{where} is not the manifest {child.id} was taken against", file=where)
        for name in list(waiting):
            entry = parent.repositories.get(name)
            if entry is None:
                raise DamagedBackup(
                    f"{parent.id}/{MANIFEST} lacks {name!r}, which {child.id} builds on", file=parent.id
                )
            if entry.full:
                waiting.discard(name)
        chain.append(parent)
    return chain[::-1]


def ref_set(chain: list[Manifest], name: str) -> dict[str, str]:
    """Every ref of repository `name` as the newest manifest of `chain` saw it."""
    refs: dict[str, str] = {}
    for manifest in chain:
        entry = manifest.repositories.get(name)
        if entry is None:
            refs = {}
            continue
        if entry.full:
            refs = {}
        for gone in entry.deleted_refs:
            refs.pop(gone, None)
        refs.update(entry.refs)
    return refs


def _parse(raw: bytes, backup_id: str) -> Manifest:
    data: dict[str, Any] = orjson.loads(raw)
    if data["format"] != FORMAT:
        raise ValueError(f"format {data['format']!r} is not {FORMAT}")
    if data["id"] != backup_id:
        raise ValueError(f"it names backup {data['id']!r}")
    parent = data["parent"]
    if parent is not None and not (isinstance(parent, str) and BACKUP_ID.fullmatch(parent)):
        raise ValueError(f"parent {parent!r}")
    files = {_path(p): _file_entry(e) for p, e in data["files"].items()}
    repositories = {validate_repo_name(n): _repository(e, files) for n, e in data["repositories"].items()}
    parts = {str(n): [_listed(p, files) for p in paths] for n, paths in data["parts"].items()}
    return Manifest(
        id=backup_id,
        created_at=str(data["created_at"]),
        parent=parent,
        parent_manifest_sha256=data["parent_manifest_sha256"],
        gitstore=str(data["gitstore"]),
        repositories=repositories,
        parts=parts,
        files=files,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _repository(e: dict[str, Any], files: dict[str, FileEntry]) -> RepositoryEntry:
    refs = {_ref(r): _oid(o) for r, o in e["refs"].items()}
    return RepositoryEntry(
        full=bool(e["full"]),
        description=str(e["description"]),
        refs=refs,
        deleted_refs=[_ref(r) for r in e["deleted_refs"]],
        ref_count=int(e["ref_count"]),
        refs_sha256=str(e["refs_sha256"]),
        bundle=None if e["bundle"] is None else _listed(e["bundle"], files),
        relay=None if e["relay"] is None else _listed(e["relay"], files),
    )


def _file_entry(e: dict[str, Any]) -> FileEntry:
    backup = e["backup"]
    if not (isinstance(backup, str) and BACKUP_ID.fullmatch(backup)):
        raise ValueError(f"file in backup {backup!r}")
    sha = str(e["sha256"])
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ValueError(f"sha256 {sha!r}")
    return FileEntry(sha256=sha, bytes=int(e["bytes"]), backup=backup)


def _listed(path: str, files: dict[str, FileEntry]) -> str:
    if path not in files:
        raise ValueError(f"{path!r} is not among its files")
    return path


def _path(path: str) -> str:
    """A relative path of plain names: a manifest never sends a restore outside its folder."""
    if not all(_PATH_PART.fullmatch(part) for part in path.split("/")):
        raise ValueError(f"file path {path!r}")
    return path


def _ref(name: str) -> str:
    if not _REF.fullmatch(name) or ".." in name or name.endswith((".lock", "/")):
        raise ValueError(f"ref {name!r}")
    return name


def _oid(oid: str) -> str:
    if not _OID.fullmatch(oid):
        raise ValueError(f"object id {oid!r}")
    return oid

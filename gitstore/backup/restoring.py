"""Restoring a backup into a data directory: all of it, or some repositories.

Nothing is half-restored. Everything is refused that can be before a byte is fetched (a
repository or credentials file that exists, without `force`). Then, in a staging folder inside
the data directory (so the last step is a rename on one file system):

1. every file the restore needs is fetched and checked against its manifest's sha256 and size;
   the manifests of the chain are checked against the sha256 each child recorded of its parent;
2. each repository is built: its bundles applied oldest first (git checks each prerequisite and
   hashes every object), its refs set as the chain says, the ref set's digest compared with the
   manifest's, every object the refs reach checked present, and its index and live-only copy
   rebuilt from the refs (the same refs after: the digest is compared again);
3. only then is each repository renamed into place (one over an existing one moves that one
   aside under its locks, then it is removed), and the node's parts (credentials) written.

A problem in 1 or 2 is a DamagedBackup naming the file, and the staging folder is removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitstore.backup.git_bundles import apply_bundle, check_connected
from gitstore.backup.manifest import Manifest, chain_of, file_sha256, load_manifest, ref_set, refs_digest
from gitstore.backup.parts import NodePart
from gitstore.backup.targets import Target
from gitstore.errors import DamagedBackup, InvalidInput, NotFound, RepositoryExists, RepositoryNotFound
from gitstore.names import validate_repo_name
from gitstore.relay.api import install_state
from gitstore.repository import ContentRepository
from gitstore.storage.api import GitRepository, commit_id, in_order, refs_under, update_refs_packed
from gitstore.store import Store
from gitstore.upkeep.api import reindex, repair

__all__ = ["RestoreReport", "RestoredRepository", "restore"]


@dataclass
class RestoredRepository:
    refs: int
    entities: int
    replaced: bool  # an existing repository was replaced (--force)


@dataclass
class RestoreReport:
    id: str
    chain: list[str]
    data: str
    repositories: dict[str, RestoredRepository] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)
    bytes_fetched: int = 0
    seconds: float = 0.0


def restore(
    target: Target,
    data_dir: Path,
    *,
    backup_id: str | None = None,
    names: Sequence[str] | None = None,
    parts: Sequence[NodePart] = (),
    force: bool = False,
) -> RestoreReport:
    """Restore backup `backup_id` (default: the newest) of `target` into `data_dir`: the
    repositories `names` (default: every one, and the node's `parts` with them)."""
    start = time.monotonic()
    newest = load_manifest(target, _chosen(target, backup_id))
    wanted = _wanted(newest, names)
    placed = _parts_to_place(newest, parts) if names is None else []
    data_dir = Path(data_dir).resolve()
    if not force:
        for name in wanted:
            if (data_dir / f"{name}.git").exists():
                raise RepositoryExists(
                    f"repository {name!r} exists in {data_dir}; restore over it with --force", name=name
                )
        for part, files in placed:
            part.refuse_overwrite(files)
    chain = chain_of(target, newest.id, wanted)
    report = RestoreReport(newest.id, [m.id for m in chain], str(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restoring-", dir=data_dir))
    try:
        fetched = _Fetched(target, staging / "files")
        built = {name: _build(name, chain, fetched, staging / "repos") for name in wanted}
        staged = [(part, {f.rsplit("/", 1)[1]: fetched.one(newest, f) for f in files}) for part, files in placed]
        report.bytes_fetched = fetched.bytes
        for name, (repo, restored) in built.items():
            restored.replaced = _move_into_place(repo.path, data_dir / f"{name}.git", staging / "replaced")
            report.repositories[name] = restored
        for part, local in staged:
            part.restore(local)
        report.parts = [part.name for part, _ in placed]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = round(time.monotonic() - start, 3)
    return report


def _chosen(target: Target, backup_id: str | None) -> str:
    backups = target.backups()
    if not backups:
        raise NotFound(f"{target.describe()} holds no complete backup")
    if backup_id is None:
        return backups[-1]
    if backup_id not in backups:
        raise NotFound(f"{target.describe()} holds no complete backup {backup_id!r}")
    return backup_id


def _wanted(newest: Manifest, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return sorted(newest.repositories)
    for name in names:
        validate_repo_name(name)
        if name not in newest.repositories:
            raise RepositoryNotFound(f"backup {newest.id} holds no repository {name!r}", name=name)
    return sorted(set(names))


def _parts_to_place(newest: Manifest, parts: Sequence[NodePart]) -> list[tuple[NodePart, list[str]]]:
    handlers = {part.name: part for part in parts}
    unknown = sorted(newest.parts.keys() - handlers.keys())
    if unknown:
        # A node brought back without them would not be the node that was backed up.
        raise InvalidInput(
            f"backup {newest.id} holds {', '.join(unknown)}, which this gitstore cannot restore; "
            "restore repositories by name instead",
            errors=[{"loc": ["parts", name], "msg": "no handler"} for name in unknown],
        )
    return [(handlers[name], files) for name, files in sorted(newest.parts.items())]


class _Fetched:
    """Files fetched from the target into the staging folder, each checked on arrival."""

    def __init__(self, target: Target, root: Path) -> None:
        self.target, self.root = target, root
        self.bytes = 0

    def one(self, manifest: Manifest, name: str) -> Path:
        entry = manifest.files[name]
        where = f"{entry.backup}/{name}"
        local = self.root / entry.backup / name
        if local.exists():
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.target.fetch(entry.backup, name, local)
        except FileNotFoundError:
            raise DamagedBackup(f"{where} is missing", file=where) from None
        size = local.stat().st_size
        if size != entry.bytes:
            raise DamagedBackup(f"{where} has {size} bytes, its manifest says {entry.bytes}", file=where)
        if file_sha256(local) != entry.sha256:
            raise DamagedBackup(f"{where} does not match the sha256 in its manifest", file=where)
        self.bytes += size
        return local


def _build(
    name: str, chain: list[Manifest], fetched: _Fetched, into: Path
) -> tuple[ContentRepository, RestoredRepository]:
    """The repository `name` as the newest manifest saw it, built in `into`, checked."""
    newest = chain[-1].repositories[name]
    steps = _steps(chain, name)
    files = [(m, m.repositories[name].bundle) for m in steps]
    bundles = [(m, b, fetched.one(m, b)) for m, b in files if b is not None]
    relay = fetched.one(chain[-1], newest.relay) if newest.relay else None
    repo = Store(into).create_repository(name, newest.description)
    for manifest, bundle, local in bundles:
        where = f"{manifest.files[bundle].backup}/{bundle}"
        try:
            listed = apply_bundle(repo.path, local)
        except subprocess.CalledProcessError as exc:
            raise DamagedBackup(f"{where} was refused by git: {exc.stderr.decode().strip()}", file=where) from None
        if listed != manifest.repositories[name].refs:
            raise DamagedBackup(f"{where} does not carry the refs its manifest lists", file=where)
    refs = ref_set(chain, name)
    if refs_digest(refs) != newest.refs_sha256:
        raise DamagedBackup(
            f"the manifests of {name!r} do not add up to its ref set", file=f"{chain[-1].id}/manifest.json"
        )
    _set_refs(repo.storage, refs)
    try:
        check_connected(repo.path)
    except subprocess.CalledProcessError as exc:
        where = f"{chain[-1].id}/manifest.json"
        raise DamagedBackup(
            f"{name!r}: refs name objects no bundle holds: {exc.stderr.decode()[:300]}", file=where
        ) from None
    entities = reindex(repo)
    repair(repo)  # builds the live-only copy
    if refs_digest(_refs(repo)) != newest.refs_sha256:
        raise DamagedBackup(f"rebuilding {name!r} moved its refs", file=f"{chain[-1].id}/manifest.json")
    if relay is not None:
        install_state(repo.storage.control_dir, relay)
    return repo, RestoredRepository(refs=len(refs), entities=entities, replaced=False)


def _steps(chain: list[Manifest], name: str) -> list[Manifest]:
    """The manifests whose entries for `name` build its state: from its last full one on."""
    last_full = max(i for i, m in enumerate(chain) if name in m.repositories and m.repositories[name].full)
    return chain[last_full:]


def _set_refs(storage: GitRepository, refs: dict[str, str]) -> None:
    with in_order(storage, "housekeeping", "publish", "drafts"):
        update_refs_packed(storage.git, {name: commit_id(oid) for name, oid in refs.items()})


def _refs(repo: ContentRepository) -> dict[str, str]:
    return {f"refs/{name}": str(oid) for name, oid in refs_under(repo.storage.git, "refs/").items()}


def _move_into_place(built: Path, final: Path, aside: Path) -> bool:
    """Rename the built repository to `final`; whether one was there (and is replaced)."""
    if not final.exists():
        try:
            os.rename(built, final)
        except OSError:  # made meanwhile: never merged into, never overwritten without asking
            raise RepositoryExists(f"{final} appeared during the restore", name=final.stem) from None
        return False
    aside.mkdir(exist_ok=True)
    old = GitRepository(final)
    # No writer of this process or another is in the middle of a change while it goes.
    with in_order(old, "housekeeping", "publish", "drafts"):
        os.rename(final, aside / final.name)
        os.rename(built, final)
    return True

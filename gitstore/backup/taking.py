"""Taking a backup while the service serves.

Each repository's refs are one snapshot, read under its publish and drafts locks (every ref
writer holds one of them), after finishing what a crash left half done and folding the draft
changes that wait, as the service would within a second: so a restore rebuilds the same refs
and nothing its index would have to make up. The writers wait only for that read. The objects
are packed afterwards, lock-free for writers, under the housekeeping lock alone: every remover
of objects (repack, `git prune`, an erasure) takes it, so nothing the snapshot reaches can go
while it is packed, and objects are immutable, so the pack is exactly the snapshot's.

The relay's state is copied just before the snapshot: its cursors then name no event after the
refs, so a restored relay may repeat events (each carries its id, and sinks drop repeats) but
never skips one.

A backup is incremental against the newest complete one in the target unless `full` is asked
for: a repository's bundle then holds only the objects its previous ref tips do not reach. A
repository is backed up in full when it is new, or when an erasure rewrote its history since
(building on the old history would restore the erased objects along with it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path

from gitstore.backup.git_bundles import write_bundle
from gitstore.backup.manifest import FileEntry, Manifest, RepositoryEntry, chain_of, file_sha256, ref_set, refs_digest
from gitstore.backup.manifest import load_manifest as _load
from gitstore.backup.parts import NodePart
from gitstore.backup.targets import MANIFEST, Target
from gitstore.entities.api import ERASURES_REF, fold_drafts, roll_forward_drafts
from gitstore.erasure import finish_erasures
from gitstore.errors import DamagedBackup
from gitstore.publishing.api import roll_forward
from gitstore.relay.api import copy_state
from gitstore.repository import ContentRepository
from gitstore.storage.api import commit_id, has_object, in_order, refs_under
from gitstore.store import Store

__all__ = ["BackupReport", "RepositoryBackup", "take_backup"]


@dataclass
class RepositoryBackup:
    kind: str  # full | incremental | unchanged
    refs: int
    refs_changed: int
    refs_deleted: int
    bundle_bytes: int


@dataclass
class BackupReport:
    id: str
    parent: str | None
    target: str
    repositories: dict[str, RepositoryBackup] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)
    bytes_written: int = 0  # what this backup stored, its manifest included
    files_reused: int = 0  # files equal to the previous backup's, not stored again
    seconds: float = 0.0


class _Previous:
    """The newest complete backup, and the chain that gives each of its repositories' refs."""

    def __init__(self, target: Target, backup_id: str) -> None:
        try:
            self.manifest = _load(target, backup_id)
            self.chain = chain_of(target, backup_id, self.manifest.repositories)
        except DamagedBackup as exc:
            # Building on it would make a backup no restore can use.
            raise DamagedBackup(f"{exc.detail}; `gitstore backup --full` starts a new chain", **exc.extra) from None

    def refs(self, name: str) -> dict[str, str] | None:
        return ref_set(self.chain, name) if name in self.manifest.repositories else None


def take_backup(store: Store, target: Target, *, parts: Sequence[NodePart] = (), full: bool = False) -> BackupReport:
    """Back up every repository of `store` and each of `parts` to `target`."""
    start = time.monotonic()
    existing = target.backups()
    previous = _Previous(target, existing[-1]) if existing and not full else None
    backup_id = _new_id(existing[-1] if existing else None)
    report = BackupReport(backup_id, previous.manifest.id if previous else None, target.describe())
    with target.writing(backup_id) as folder:
        files = _Files(folder, backup_id, previous.manifest if previous else None)
        repositories = {}
        for repo in store.repositories():
            repositories[repo.name], report.repositories[repo.name] = _back_up(repo, files, previous)
        listed = {}
        for part in parts:
            (folder / "parts" / part.name).mkdir(parents=True)
            names = [f"parts/{part.name}/{name}" for name in part.save(folder / "parts" / part.name)]
            if names:
                listed[part.name] = [files.add(name) for name in names]
        report.parts = sorted(listed)
        manifest = Manifest(
            id=backup_id,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            parent=report.parent,
            parent_manifest_sha256=previous.manifest.sha256 if previous else None,
            gitstore=package_version("gitstore"),
            repositories=repositories,
            parts=listed,
            files=files.entries,
        )
        files.drop_empty_folders()
        raw = manifest.to_bytes()
        (folder / MANIFEST).write_bytes(raw)
        target.publish(backup_id, folder, files.stored)
    report.bytes_written = files.bytes + len(raw)
    report.files_reused = len(files.entries) - len(files.stored)
    report.seconds = round(time.monotonic() - start, 3)
    return report


class _Files:
    """The files of the backup being written, each hashed; one equal to the previous backup's
    copy is dropped and named in the manifest as kept there."""

    def __init__(self, folder: Path, backup_id: str, previous: Manifest | None) -> None:
        self.folder, self.backup_id, self.previous = folder, backup_id, previous
        self.entries: dict[str, FileEntry] = {}
        self.stored: list[str] = []
        self.bytes = 0

    def add(self, name: str) -> str:
        path = self.folder / name
        entry = FileEntry(file_sha256(path), path.stat().st_size, self.backup_id)
        before = self.previous.files.get(name) if self.previous else None
        if before is not None and (before.sha256, before.bytes) == (entry.sha256, entry.bytes):
            entry = before
            path.unlink()
        else:
            self.stored.append(name)
            self.bytes += entry.bytes
        self.entries[name] = entry
        return name

    def drop_empty_folders(self) -> None:
        """What an unchanged repository or part left: an empty folder says nothing."""
        for path in sorted(self.folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _back_up(
    repo: ContentRepository, files: _Files, previous: _Previous | None
) -> tuple[RepositoryEntry, RepositoryBackup]:
    folder = f"repos/{repo.name}"
    (files.folder / folder).mkdir(parents=True)
    relay = f"{folder}/relay.sqlite3"
    has_relay = copy_state(repo.storage.control_dir, files.folder / relay)
    before = previous.refs(repo.name) if previous else None
    # Held while the objects are packed: no repack, prune or erasure removes one meanwhile.
    with in_order(repo.storage, "housekeeping"):
        finish_erasures(repo)  # a plan a crash left is not in the backup: finish it while it is here
        refs = _snapshot(repo)
        if before is not None and before.get(ERASURES_REF) != refs.get(ERASURES_REF):
            before = None  # history was rewritten: build on nothing that held what was erased
        if before is None:
            changed, deleted = refs, []
        else:
            changed = {name: oid for name, oid in refs.items() if before.get(name) != oid}
            deleted = sorted(before.keys() - refs.keys())
        bundle = f"{folder}/objects.bundle" if changed else None
        size = 0
        if bundle is not None:
            git = repo.storage.git
            have = [oid for oid in set((before or {}).values()) if has_object(git, commit_id(oid))]
            size = write_bundle(repo.path, changed, have, files.folder / bundle)
    entry = RepositoryEntry(
        full=before is None,
        description=repo.description,
        refs=changed,
        deleted_refs=deleted,
        ref_count=len(refs),
        refs_sha256=refs_digest(refs),
        bundle=files.add(bundle) if bundle else None,
        relay=files.add(relay) if has_relay else None,
    )
    kind = "full" if entry.full else "incremental" if changed or deleted else "unchanged"
    return entry, RepositoryBackup(kind, len(refs), len(changed), len(deleted), size)


def _snapshot(repo: ContentRepository) -> dict[str, str]:
    """Every ref of `repo`, read while no writer can move one."""
    with in_order(repo.storage, "publish", "drafts"):
        roll_forward(repo)
        roll_forward_drafts(repo)
        fold_drafts(repo)
        return {f"refs/{name}": str(oid) for name, oid in refs_under(repo.storage.git, "refs/").items()}


def _new_id(newest: str | None) -> str:
    """Now in UTC, and after the newest backup's id even if the clock went back."""
    now = datetime.now(UTC)
    if newest is not None:
        now = max(now, datetime.strptime(newest, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC) + timedelta(microseconds=1))
    return now.strftime("%Y%m%dT%H%M%S.%fZ")

"""The backup package's public surface: `take_backup`, `restore`, `list_backups`, the targets
and the node's parts (`node_parts`; gitstore.cluster.backup_part adds the control plane)."""

from __future__ import annotations

from dataclasses import dataclass

from gitstore.backup.manifest import Manifest, load_manifest
from gitstore.backup.parts import CredentialsPart, NodePart, node_parts
from gitstore.backup.restoring import RestoredRepository, RestoreReport, restore
from gitstore.backup.taking import BackupReport, RepositoryBackup, take_backup
from gitstore.backup.targets import DirectoryTarget, S3Target, Target, open_target
from gitstore.errors import DamagedBackup

__all__ = [
    "BackupReport",
    "BackupSummary",
    "CredentialsPart",
    "DirectoryTarget",
    "Manifest",
    "NodePart",
    "RepositoryBackup",
    "RestoreReport",
    "RestoredRepository",
    "S3Target",
    "Target",
    "list_backups",
    "load_manifest",
    "node_parts",
    "open_target",
    "restore",
    "take_backup",
]


@dataclass
class BackupSummary:
    id: str
    created_at: str | None
    parent: str | None  # None: restoring it needs no other backup
    repositories: int
    bytes: int  # what this backup stores itself
    damaged: str | None = None


def list_backups(target: Target) -> list[BackupSummary]:
    """Every complete backup of `target`, oldest first; one whose manifest cannot be read is
    listed as damaged rather than left out."""
    found = []
    for backup_id in target.backups():
        try:
            m = load_manifest(target, backup_id)
        except DamagedBackup as exc:
            found.append(BackupSummary(backup_id, None, None, 0, 0, damaged=exc.detail))
            continue
        stored = sum(e.bytes for e in m.files.values() if e.backup == m.id)
        found.append(BackupSummary(m.id, m.created_at, m.parent, len(m.repositories), stored))
    return found

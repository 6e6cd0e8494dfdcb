"""What a node needs besides its repositories, as parts of a backup.

Each part saves its files into the backup (`parts/<name>/...`) and puts them back on restore.
The credentials file is one: hashed tokens, OAuth clients and the key that signs the service's
own tokens, without which every client would need new credentials. A cluster node adds its
control plane (gitstore.cluster.backup_part: placement, epochs, replicas, the cluster's
credentials); a restore refuses a backup holding a part it has no handler for, rather than bring
a node back without it.

What is not a part, because it is rebuilt: each repository's index (`gitstore/index.sqlite3`,
from refs) and live-only copy (`gitstore/live.git`, from `main`, deterministically). What is
not kept at all: lock files, the startup lock, `demo-token` (a secret in the clear; the
credentials part keeps its hash, so the token itself goes on working).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from gitstore.access.api import default_path
from gitstore.errors import AlreadyExists
from gitstore.storage.api import write_atomically

__all__ = ["CredentialsPart", "NodePart", "node_parts"]


class NodePart(Protocol):
    name: str

    def save(self, into: Path) -> list[str]:
        """Write this part's files into `into` as one consistent state, while the service
        runs; their names (relative to `into`), none if there is nothing to keep."""

    def refuse_overwrite(self, names: list[str]) -> None:
        """Raise AlreadyExists if restoring `names` would replace what is there now."""

    def restore(self, files: dict[str, Path]) -> None:
        """Put the verified files (by the names `save` gave them) in place, each atomically."""


class CredentialsPart:
    """The credentials file. It is replaced whole, atomically, by every change (and read so), so
    a copy of its bytes is one consistent state; it is never logged or printed."""

    name = "credentials"
    _FILE = "credentials.json"

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, into: Path) -> list[str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        write_atomically(into / self._FILE, raw, mode=0o600)
        return [self._FILE]

    def refuse_overwrite(self, names: list[str]) -> None:
        if names and self.path.exists():
            raise AlreadyExists(f"{self.path} exists; restore over it with --force", file=str(self.path))

    def restore(self, files: dict[str, Path]) -> None:
        if self._FILE in files:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, files[self._FILE].read_bytes(), mode=0o600)


def node_parts(data_dir: Path, credentials: Path | None = None) -> list[NodePart]:
    """Every part a node of this data directory has: the seam where cluster mode adds its
    metadata."""
    return [CredentialsPart(credentials or default_path(data_dir))]

"""Where backups live: a directory, or a bucket of S3-compatible storage.

A backup is a folder of files, `<id>/manifest.json` and the files it lists. It becomes visible
only once complete: a directory target writes it under `.<id>.partial/` and renames it into
place; an S3 target uploads every file first and the manifest last, and lists only backups
that have one. A backup cut short by a crash or an outage is never listed, so never used.

S3 reads its endpoint from `GITSTORE_S3_ENDPOINT` (else boto3's own `AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL`), and credentials and region from the standard AWS environment variables
and files, as every AWS tool does.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from gitstore.errors import BackupUnavailable, InvalidInput
from gitstore.storage.api import fsync_dir

__all__ = ["MANIFEST", "DirectoryTarget", "S3Target", "Target", "open_target"]

MANIFEST = "manifest.json"
# A backup id is its UTC time to the microsecond: sorting ids sorts backups by age.
BACKUP_ID = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z")


class Target(Protocol):
    """What backup and restore need of a place that holds backups."""

    def describe(self) -> str:
        """The target as the operator named it (`/backups`, `s3://bucket/prefix`)."""

    def backups(self) -> list[str]:
        """The ids of the complete backups, oldest first."""

    def read(self, backup_id: str, name: str) -> bytes:
        """A small file of a backup (its manifest). Raises FileNotFoundError."""

    def fetch(self, backup_id: str, name: str, dest: Path) -> None:
        """Copy a file of a backup to `dest`. Raises FileNotFoundError."""

    def writing(self, backup_id: str) -> Any:
        """A context manager yielding a local folder to write the new backup's files into; on
        a clean exit with `publish` called, the backup is complete, otherwise it is dropped."""

    def publish(self, backup_id: str, folder: Path, names: list[str]) -> None:
        """Make the backup written in `folder` complete: `names` first, the manifest last."""


def open_target(where: str) -> Target:
    """`s3://bucket/prefix` or a directory path."""
    if where.startswith("s3://"):
        bucket, _, prefix = where[len("s3://") :].partition("/")
        if not bucket:
            raise InvalidInput(f"no bucket in {where!r}", errors=[{"loc": ["target"], "msg": "s3://bucket/prefix"}])
        return S3Target(bucket, prefix.strip("/"))
    return DirectoryTarget(Path(where))


class DirectoryTarget:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def backups(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if BACKUP_ID.fullmatch(p.name) and (p / MANIFEST).is_file())

    def read(self, backup_id: str, name: str) -> bytes:
        return (self.root / backup_id / name).read_bytes()

    def fetch(self, backup_id: str, name: str, dest: Path) -> None:
        shutil.copyfile(self.root / backup_id / name, dest)

    @contextmanager
    def writing(self, backup_id: str) -> Iterator[Path]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            folder = self.root / f".{backup_id}.partial"
            folder.mkdir(mode=0o700)  # it will hold credentials
        except OSError as exc:
            raise BackupUnavailable(f"cannot write backups to {self.root}: {exc.strerror}") from None
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # gone by renaming, unless something failed

    def publish(self, backup_id: str, folder: Path, names: list[str]) -> None:
        for name in [*names, MANIFEST]:
            with open(folder / name, "rb") as file:
                os.fsync(file.fileno())
        for sub in {(folder / name).parent for name in names}:
            fsync_dir(sub)
        os.rename(folder, self.root / backup_id)
        fsync_dir(self.root)


class S3Target:
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix
        self._client: Any = None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, backup_id: str, name: str) -> str:
        return "/".join(filter(None, (self.prefix, backup_id, name)))

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            # Only on the first use: a directory target never needs the AWS libraries.
            self._client = boto3.client("s3", endpoint_url=os.environ.get("GITSTORE_S3_ENDPOINT") or None)
        return self._client

    def backups(self) -> list[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        found = []
        with self._errors():
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            for page in pages:
                for item in page.get("Contents", []):
                    backup_id, _, name = item["Key"][len(start) :].partition("/")
                    if name == MANIFEST and BACKUP_ID.fullmatch(backup_id):
                        found.append(backup_id)
        return sorted(found)

    def read(self, backup_id: str, name: str) -> bytes:
        with self._errors(missing=f"{backup_id}/{name}"):
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(backup_id, name))
            return answer["Body"].read()  # type: ignore[no-any-return]

    def fetch(self, backup_id: str, name: str, dest: Path) -> None:
        with self._errors(missing=f"{backup_id}/{name}"):
            self.client.download_file(self.bucket, self._key(backup_id, name), str(dest))

    @contextmanager
    def writing(self, backup_id: str) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix=f"gitstore-backup-{backup_id}-"))
        os.chmod(folder, 0o700)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish(self, backup_id: str, folder: Path, names: list[str]) -> None:
        with self._errors():
            for name in [*names, MANIFEST]:  # the manifest last: until it is there, nothing lists the backup
                self.client.upload_file(str(folder / name), self.bucket, self._key(backup_id, name))

    @contextmanager
    def _errors(self, *, missing: str | None = None) -> Iterator[None]:
        """botocore's errors as gitstore's: a missing key as FileNotFoundError (the caller
        names it), anything else as BackupUnavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if missing is not None and code in ("404", "NoSuchKey"):
                raise FileNotFoundError(missing) from None
            raise BackupUnavailable(f"{self.describe()}: {code or exc}") from None
        except BotoCoreError as exc:
            raise BackupUnavailable(f"{self.describe()}: {exc}") from None

"""Reading a bundle one entry at a time, refusing anything unsafe.

Nothing read from a bundle ever becomes a path on disk, but an archive that tries to reach out
of itself is hostile, so it is refused whole (InvalidBundle) rather than half read: a `..` or
absolute path, a link or device, the same path twice, more entries than allowed, or an entry
or the whole expanding past its limit (a zip bomb). Sizes are enforced on what is actually
expanded, not on what headers declare, and nothing is read past a limit, so memory holds one
entry at a time beyond what the caller keeps.
"""

from __future__ import annotations

import gzip
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from gitstore.bundles.format import NDJSON, TAR_GZ, ZIP, Entry
from gitstore.errors import InvalidBundle, InvalidInput

__all__ = ["Limits", "read_entries"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one import may hold. The expanded total bounds memory: an import's entities
    are all held until its one atomic write."""

    max_entries: int = 500_000  # archive members or non-empty lines
    max_entry_bytes: int = 16 * _MIB  # one file or line, expanded
    max_expanded_bytes: int = 512 * _MIB  # everything expanded, archive headers included


def read_entries(source: BinaryIO, media_type: str, limits: Limits) -> Iterator[Entry]:
    """Every file of a tar.gz or zip bundle, or every non-empty line of a JSON lines one.

    Raises InvalidBundle at the first thing that makes the bundle unsafe or unreadable."""
    if media_type == TAR_GZ:
        return _tar_entries(source, limits)
    if media_type == ZIP:
        return _zip_entries(source, limits)
    if media_type == NDJSON:
        return _lines(source, limits)
    raise InvalidInput(
        f"a bundle is {TAR_GZ} (tar.gz), {ZIP} or {NDJSON}",
        errors=[{"loc": ["media_type"], "msg": f"unsupported: {media_type!r}"}],
    )


def _tar_entries(source: BinaryIO, limits: Limits) -> Iterator[Entry]:
    counter = _Expanded(gzip.GzipFile(fileobj=source, mode="rb"), limits.max_expanded_bytes)
    seen: set[str] = set()
    try:
        with tarfile.open(fileobj=counter, mode="r|") as archive:  # type: ignore[call-overload]
            for count, member in enumerate(archive, 1):
                _check_count(count, limits)
                name = _safe_name(member.name, seen)
                if member.isdir():
                    continue
                if not member.isreg():
                    raise InvalidBundle(f"{name} is a link or device; a bundle holds plain files only", entry=name)
                _check_size(name, member.size, limits)
                stream = archive.extractfile(member)
                assert stream is not None
                yield Entry(name, stream.read(member.size))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise InvalidBundle(f"not a readable tar.gz archive: {exc}") from None


class _Expanded:
    """A stream that counts what it expands and stops at `limit`: tarfile reads long names
    and pax headers whole, whatever size they declare."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        self._inner, self._limit, self._read = inner, limit, 0

    def read(self, size: int = -1) -> bytes:
        if size < 0 or self._read + size > self._limit:
            size = self._limit - self._read + 1
        data = self._inner.read(size)
        self._read += len(data)
        if self._read > self._limit:
            raise InvalidBundle(f"the bundle expands to more than {self._limit} bytes", limit=self._limit)
        return data


def _zip_entries(source: BinaryIO, limits: Limits) -> Iterator[Entry]:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidBundle(f"not a readable zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        _check_count(len(infos), limits)
        seen: set[str] = set()
        expanded = 0
        for info in infos:
            name = _safe_name(info.filename, seen)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise InvalidBundle(f"{name} is a link or device; a bundle holds plain files only", entry=name)
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise InvalidBundle(f"{name} is encrypted", entry=name)
            _check_size(name, info.file_size, limits)
            try:
                with archive.open(info) as stream:
                    data = stream.read(limits.max_entry_bytes + 1)  # never trust the declared size
            except (zipfile.BadZipFile, OSError, zlib.error, NotImplementedError) as exc:
                raise InvalidBundle(f"{name} cannot be read: {exc}", entry=name) from None
            _check_size(name, len(data), limits)
            expanded += len(data)
            if expanded > limits.max_expanded_bytes:
                raise InvalidBundle(
                    f"the bundle expands to more than {limits.max_expanded_bytes} bytes",
                    limit=limits.max_expanded_bytes,
                )
            yield Entry(name, data)


def _lines(source: BinaryIO, limits: Limits) -> Iterator[Entry]:
    number = count = expanded = 0
    while line := source.readline(limits.max_entry_bytes + 2):
        number += 1
        expanded += len(line)
        data = line.rstrip(b"\r\n")
        if len(data) > limits.max_entry_bytes:
            raise InvalidBundle(f"line {number} is longer than {limits.max_entry_bytes} bytes", entry=f"line {number}")
        if expanded > limits.max_expanded_bytes:
            raise InvalidBundle(
                f"the bundle is larger than {limits.max_expanded_bytes} bytes", limit=limits.max_expanded_bytes
            )
        if data.strip():
            count += 1
            _check_count(count, limits)
            yield Entry(f"line {number}", data)


def _safe_name(raw: str, seen: set[str]) -> str:
    """The entry's path inside the bundle, refusing any that would point outside it."""
    name = raw
    while name.startswith("./"):
        name = name[2:]  # `tar -C dir .` writes ./ first: harmless
    parts = name.rstrip("/").split("/")
    if name.startswith("/") or "\\" in name or "\0" in name or ":" in parts[0]:
        raise InvalidBundle(f"{raw!r} is an absolute path; a bundle holds relative paths only", entry=raw)
    if ".." in parts:
        raise InvalidBundle(f"{raw!r} reaches outside the bundle with '..'", entry=raw)
    if name in seen:
        raise InvalidBundle(f"{raw!r} is in the bundle twice", entry=raw)
    seen.add(name)
    return name


def _check_count(count: int, limits: Limits) -> None:
    if count > limits.max_entries:
        raise InvalidBundle(f"the bundle has more than {limits.max_entries} entries", limit=limits.max_entries)


def _check_size(name: str, size: int, limits: Limits) -> None:
    if size > limits.max_entry_bytes:
        raise InvalidBundle(f"{name} expands past {limits.max_entry_bytes} bytes", entry=name)

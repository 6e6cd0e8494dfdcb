"""Reading a bundle one entry at a time, refusing anything unsafe.

Nothing read from a bundle ever becomes a path on disk, but an archive that tries to reach out
of itself is hostile, so it is refused whole (InvalidBundle) rather than half read: a `..` or
absolute path, a link or device, the same path twice, more entries than allowed, or an entry
or the whole expanding past its limit (a zip bomb). Sizes are enforced on what is actually
expanded, not on what headers declare, and nothing is read past a limit, so memory holds one
entry at a time beyond what the caller keeps.

A bundle kept unpacked, as a directory (the sample repositories are), is held to the same
rules: plain files and directories only, read without ever following a link.
"""

from __future__ import annotations

import gzip
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gitstore.bundles.format import NDJSON, TAR_GZ, ZIP, Entry
from gitstore.errors import InvalidBundle, InvalidInput

__all__ = ["Limits", "read_directory", "read_entries"]

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
    """The files of a tar.gz. Python's tarfile costs ~100 us a member in headers alone (2 s for
    a 10,000-entity bundle); this reads the three header kinds a tar writer uses (ustar, pax,
    GNU long names) and refuses the rest."""
    stream = _Expanded(gzip.GzipFile(fileobj=source, mode="rb"), limits.max_expanded_bytes)
    seen: set[str] = set()
    count = 0
    pending: dict[str, str] = {}  # what a pax or GNU long-name header says of the next member
    try:
        while True:
            header = stream.take(512)
            if len(header) < 512 or header == _ZERO_BLOCK:
                return  # the end (`tar` writes two zero blocks; one is enough to stop)
            count += 1
            _check_count(count, limits)
            kind, name, size = _header(header)
            name = pending.pop("path", name)
            size = int(pending.pop("size", size))
            _check_size(name, size, limits)
            data = stream.take(size)
            if len(data) < size:
                raise InvalidBundle("the tar archive ends in the middle of an entry")
            stream.take(-size % 512)
            if kind in _PAX:
                pending = _pax_records(data) if kind == b"x" else pending  # a global header names no file
            elif kind == b"L":
                pending = {"path": data.rstrip(b"\0").decode()}
            elif kind == b"5":
                _safe_name(name, seen)
            elif kind in _FILE_KINDS:
                yield Entry(_safe_name(name, seen), data)
            else:
                raise InvalidBundle(f"{name} is a link or device; a bundle holds plain files only", entry=name)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidBundle(f"not a readable tar.gz archive: {exc}") from None


_ZERO_BLOCK = bytes(512)
_FILE_KINDS = (b"0", b"\0", b"7")  # a regular file, the old spelling, a "contiguous" file
_PAX = (b"x", b"g")


def _header(block: bytes) -> tuple[bytes, str, int]:
    """(type, path, size) of a ustar header block, checked against its checksum."""
    declared = int(block[148:156].rstrip(b" \0") or b"0", 8)
    if declared != sum(block) - sum(block[148:156]) + 8 * 32:
        raise InvalidBundle("not a tar archive: a header's checksum does not match")
    name = block[:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0" and prefix:
        name = prefix + b"/" + name
    field = block[124:136]
    if field[0] & 0x80:  # base-256, for sizes octal cannot hold
        size = int.from_bytes(field[1:], "big")
    else:
        size = int(field.rstrip(b" \0") or b"0", 8)
    return block[156:157], name.decode(), size


def _pax_records(data: bytes) -> dict[str, str]:
    """The `path` and `size` of a pax extended header ("<length> <key>=<value>\n" records)."""
    found: dict[str, str] = {}
    position = 0
    while position < len(data):
        length = data[position:].split(b" ", 1)[0]
        step = int(length)
        if step <= len(length):
            raise ValueError("a pax record shorter than its own length")
        key, _, value = data[position + len(length) + 1 : position + step - 1].partition(b"=")
        if key in (b"path", b"size"):
            found[key.decode()] = value.decode()
        position += step
    return found


class _Expanded:
    """The decompressed stream, read in large chunks and counted: nothing is expanded past
    `limit`, whatever sizes the headers declare."""

    def __init__(self, inner: gzip.GzipFile, limit: int) -> None:
        self._inner, self._limit, self._expanded = inner, limit, 0
        self._buffer, self._position = b"", 0

    def take(self, size: int) -> bytes:
        """The next `size` bytes (fewer at the end)."""
        while len(self._buffer) - self._position < size:
            chunk = self._inner.read(max(_CHUNK, size))
            if not chunk:
                break
            self._expanded += len(chunk)
            if self._expanded > self._limit:
                raise InvalidBundle(f"the bundle expands to more than {self._limit} bytes", limit=self._limit)
            self._buffer = self._buffer[self._position :] + chunk
            self._position = 0
        data = self._buffer[self._position : self._position + size]
        self._position += len(data)
        return data


_CHUNK = 1 << 16


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


def read_directory(root: Path, limits: Limits) -> Iterator[Entry]:
    """Every file of a bundle kept unpacked in the directory `root`, named by its path inside it
    (the names an archive of it would hold), in name order.

    Raises InvalidBundle, as an archive would, at a symlink (wherever it points), a device, fifo
    or socket, a name an archive could not hold, or past the limits on entries and sizes. Each
    directory and file is opened from its parent's descriptor without following links, so nothing
    outside `root` is read, even if the tree is changed while it is read."""
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise InvalidBundle(f"{root} is not a readable directory: {exc.strerror}") from None
    try:
        yield from _directory(top, "", limits, _Tally())
    finally:
        os.close(top)


class _Tally:
    """What a walk of a directory has read so far, held to the limits as it goes."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.count = self.expanded = 0


def _directory(fd: int, prefix: str, limits: Limits, tally: _Tally) -> Iterator[Entry]:
    for name in sorted(os.listdir(fd)):
        path = prefix + name
        tally.count += 1
        _check_count(tally.count, limits)
        try:
            path.encode()
            kind = stat.S_IFMT(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
            if kind == stat.S_IFDIR:
                _safe_name(path + "/", tally.seen)
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    yield from _directory(inner, path + "/", limits, tally)
                finally:
                    os.close(inner)
                continue
            if kind != stat.S_IFREG:
                raise InvalidBundle(f"{path} is a link or device; a bundle holds plain files only", entry=path)
            _safe_name(path, tally.seen)
            data = _plain_file(name, fd, path, limits)
        except UnicodeEncodeError:
            raise InvalidBundle(f"{path!r} is not a UTF-8 name", entry=path) from None
        except OSError as exc:  # a link put in place of what was listed (ELOOP, ENOTDIR), or gone
            raise InvalidBundle(f"{path} cannot be read: {exc.strerror}", entry=path) from None
        tally.expanded += len(data)
        if tally.expanded > limits.max_expanded_bytes:
            raise InvalidBundle(
                f"the bundle holds more than {limits.max_expanded_bytes} bytes", limit=limits.max_expanded_bytes
            )
        yield Entry(path, data)


def _plain_file(name: str, directory: int, path: str, limits: Limits) -> bytes:
    """The bytes of file `name` of the open `directory`, if it is (still) a plain file within limits.
    O_NONBLOCK: opening a fifo put there meanwhile must not wait for a writer."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidBundle(f"{path} is a link or device; a bundle holds plain files only", entry=path)
        data = stream.read(limits.max_entry_bytes + 1)  # never trust the size a stat said
    _check_size(path, len(data), limits)
    return data


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

"""Writing a view of a repository as a bundle, streamed: one entity at a time goes through the
archive writer and out, so memory holds one entity and the fingerprints computed so far.

The bytes depend on content alone (no times, owners or commit ids), so two repositories that
hold the same content export the same bundle, byte for byte: that is how the round-trip tests
compare them.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable, Iterator

from gitstore.bundles.format import NDJSON, PINS_DIR, TAR_GZ, ZIP, Version, version_line
from gitstore.bundles.pins import Fingerprints
from gitstore.entities.api import MEMBERS_FILE, files_to_document, members_from_bytes, pin_resolver
from gitstore.errors import CorruptObject
from gitstore.publishing.api import LiveKeys, hidden_keys, public_files
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    ObjectId,
    TreeId,
    aggregate_entities,
    blob_at,
    commit_tree,
    entity_path,
    object_errors,
    read_blob,
    tree_entries,
)

__all__ = ["Progress", "unreadable", "write_bundle"]

#: Told (entities written, entities to write) as an export goes.
Progress = Callable[[int, int], None]

_CHUNK = 64 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can say


def write_bundle(
    git: GitHandle,
    root: TreeId | None,
    media_type: str,
    progress: Progress | None = None,
    *,
    public: LiveKeys | None = None,
) -> Iterator[bytes]:
    """The entities of aggregate tree `root` (a commit of `draft` or `main`), then every pinned
    version they need that is not already one of them, as a bundle of `media_type`. With
    `public` (which keys were live by then), each as a reader may see it
    (gitstore.publishing.public)."""
    listed = aggregate_entities(git, root)
    fingerprints = Fingerprints(git)
    sink = _Sink()
    out = _writer(media_type, sink)
    exported: dict[str, TreeId] = {}
    wanted: list[tuple[str, CommitId]] = []  # pinned versions, as (key, commit)
    for done, (key, tree) in enumerate(listed, 1):
        files = _shown(fingerprints.bundle_files(tree), public)
        if files is not None:
            exported[key] = tree
            out.add(key, None, files)
            wanted += _pins_of(git, tree, fingerprints.pinned)
        if progress is not None:
            progress(done, len(listed))
        if sink.size >= _CHUNK:
            yield sink.drain()
    carried: set[tuple[str, str]] = set()
    for key, commit in wanted:  # grows as it goes: a pinned container pins versions too
        tree = commit_tree(git, commit)
        pin = fingerprints.of_tree(tree)
        own = exported.get(key)
        if (key, pin) in carried or (own is not None and fingerprints.of_tree(own) == pin):
            continue
        carried.add((key, pin))
        files = _shown(fingerprints.bundle_files(tree), public)
        if files is None:
            continue
        out.add(key, pin, files)
        wanted += _pins_of(git, tree, fingerprints.pinned)
        if sink.size >= _CHUNK:
            yield sink.drain()
    out.close()
    yield sink.drain()


def unreadable(git: GitHandle, root: TreeId | None) -> list[str]:
    """The keys of the entities of `root` that `write_bundle` could not read whole: one of their
    objects, or of a version they pin, is damaged or missing. Once a response has started, an
    error can only cut the stream short, so an export reads everything first and refuses
    before its first byte. Each object is read once; the export reads it again."""
    readable: set[ObjectId] = set()
    pinned = pin_resolver(git)
    damaged = []
    for key, tree in aggregate_entities(git, root):
        try:
            with object_errors():
                _read_whole(git, tree, readable, pinned)
        except CorruptObject:
            damaged.append(key)  # logged, with the object, where it was found
    return damaged


def _read_whole(git: GitHandle, tree: TreeId, readable: set[ObjectId], pinned: Callable[[str], CommitId]) -> None:
    """Read every object under `tree`, and every version its manifest pins; remember what read
    whole (a failure raises, so what is remembered was read)."""
    if tree in readable:
        return
    for entry in tree_entries(git, tree):
        if entry.id in readable:
            continue
        if entry.is_tree:
            _read_whole(git, TreeId(entry.id), readable, pinned)
            continue
        data = read_blob(git, entry.id)
        if entry.name == MEMBERS_FILE:
            for member in members_from_bytes(data):
                if member.pin is not None:
                    _read_whole(git, commit_tree(git, pinned(member.pin)), readable, pinned)
        readable.add(entry.id)
    readable.add(tree)


def _shown(files: dict[str, bytes], public: LiveKeys | None) -> dict[str, bytes] | None:
    if public is None:
        return files
    doc, deleted = files_to_document(files)
    return public_files(files, doc, deleted, hidden_keys(doc, public))


def _pins_of(git: GitHandle, tree: TreeId, pinned: Callable[[str], CommitId]) -> list[tuple[str, CommitId]]:
    manifest = blob_at(git, tree, MEMBERS_FILE)
    if manifest is None:
        return []
    members = members_from_bytes(manifest)
    return [(m.key, pinned(m.pin)) for m in members if m.pin is not None]


class _Sink(io.RawIOBase):
    """Where the archive writers write; drained after each entity."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        self.size += len(data)
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.size = 0
        return data


class _Writer:
    def add(self, key: str, pin: str | None, files: dict[str, bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _writer(media_type: str, sink: _Sink) -> _Writer:
    return {TAR_GZ: _TarGz, ZIP: _Zip, NDJSON: _Lines}[media_type](sink)


def _directory(key: str, pin: str | None) -> str:
    return entity_path(key) if pin is None else f"{PINS_DIR}/{key}/{pin}"


class _TarGz(_Writer):
    """ustar headers written here: Python's tarfile spends ~100 us on each (2 s for 10,000 entities)."""

    def __init__(self, sink: _Sink) -> None:
        self._gzip = gzip.GzipFile(fileobj=sink, mode="wb", mtime=0, compresslevel=6)

    def add(self, key: str, pin: str | None, files: dict[str, bytes]) -> None:
        for name, data in sorted(files.items()):
            self._gzip.write(_tar_header(f"{_directory(key, pin)}/{name}", len(data)))
            self._gzip.write(data + bytes(-len(data) % 512))

    def close(self) -> None:
        self._gzip.write(bytes(1024))  # the end: two zero blocks
        self._gzip.close()


def _tar_header(path: str, size: int) -> bytes:
    """A ustar header of a plain file: mode 0644, owner 0, time 0, so that the bytes depend on
    content alone. A path past 100 bytes is split at a "/" into the 155-byte prefix field."""
    name, prefix = path.encode(), b""
    if len(name) > 100:
        cut = name.index(b"/", len(name) - 101)
        prefix, name = name[:cut], name[cut + 1 :]
    header = bytearray(512)
    header[: len(name)] = name
    header[100:136] = b"0000644\x000000000\x000000000\x00" + b"%011o\x00" % size
    header[136:148] = b"00000000000\x00"
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[156:157] = b"0"
    header[257:265] = b"ustar\x0000"
    header[345 : 345 + len(prefix)] = prefix
    header[148:156] = b"%06o\x00 " % sum(header)
    return bytes(header)


class _Zip(_Writer):
    def __init__(self, sink: _Sink) -> None:
        self._zip = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, key: str, pin: str | None, files: dict[str, bytes]) -> None:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(f"{_directory(key, pin)}/{name}", date_time=_EPOCH)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            self._zip.writestr(info, data)

    def close(self) -> None:
        self._zip.close()


class _Lines(_Writer):
    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def add(self, key: str, pin: str | None, files: dict[str, bytes]) -> None:
        content, _deleted = files_to_document(files)  # views never hold a delete
        self._sink.write(version_line(Version(key, content, "", pin)))

    def close(self) -> None:
        pass

"""Copying objects between repositories without copying what the target already has.

Used to keep a live-only repository in step: each publish adds a handful of commits and trees,
and copying only those (rather than everything reachable) keeps the copy proportional to the
change. Measured: packing the whole reachable set of a 2,000-entity publish took 0.53 s against
a 0.08 s publish.

What a sync copies and makes is `gathered` in memory (a `packs.ObjectBuffer` on the target's
handle) and written once at the end: a handful as loose objects, more as one pack without
deltas (`packs.write_pack`). A pack for every publish left the copy with one more pack each
time, and every lookup searches each pack: over 500 publishes in a row, a publish and its sync
went from 11 ms of CPU (the first hundred) to 35 (the last hundred), until housekeeping
repacked. Loose objects cost a lookup one `stat` however many there are, and housekeeping packs
them. Each object is read from the source once, its bytes as they are: libgit2's PackBuilder
read every object twice through the loose-object guard's Python callbacks and searched for
deltas, and libgit2's tree builder fsynced every tree it wrote into the copy (a 2,000-entity
sync: 0.53 s of CPU, most of it there).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pygit2

from gitstore.storage.commits import GitHandle, ObjectId, TreeId
from gitstore.storage.git import open_bare
from gitstore.storage.loose import read_loose, write_loose
from gitstore.storage.packs import ObjectBuffer, attach, attached

# Up to this many objects are written loose (a single-entity publish makes about six).
_LOOSE_AT_MOST = 64
# A long projection (a rebuild of every publish) writes a pack each time it holds this much.
_HELD_AT_MOST = 64 << 20


@contextmanager
def gathered(path: Path) -> Iterator[GitHandle]:
    """A handle on the plain bare repository at `path` whose new objects (written through it,
    or copied into it by `copy_missing_trees`) are held in memory, and written when the block
    ends without an exception: durable as `storage.durability` says, before any ref moves."""
    handle = open_bare(path)
    if handle is None:
        raise FileNotFoundError(path)
    buffer = ObjectBuffer(path / "objects")
    attach(handle, buffer)
    yield handle
    if len(buffer) > _LOOSE_AT_MOST:
        buffer.flush()
        return
    objects_dir = str(path / "objects")
    for oid, (kind, data) in buffer.held_objects():
        write_loose(objects_dir, str(oid), kind, data)


def write_if_large(target: GitHandle) -> None:
    """Write what `target` (a `gathered` handle) holds as a pack once it holds a lot."""
    buffer = attached(target)
    if buffer.held_bytes() > _HELD_AT_MOST:
        buffer.flush()


def copy_missing_trees(source: GitHandle, target: GitHandle, trees: Iterable[TreeId]) -> int:
    """Copy into `target` (a `gathered` handle) the trees and blobs below `trees` in `source`
    it lacks; how many. The walk stops at any tree the target has: gitstore only ever copies
    complete closures, so everything below such a tree is there too."""
    buffer, has = attached(target), _on_disk(target)
    read = partial(_read, source.odb, os.path.join(source.path, "objects"))
    copied = 0
    seen: set[ObjectId] = set()
    stack: list[tuple[ObjectId, bool]] = [(tree, True) for tree in trees]
    while stack:
        oid, is_tree = stack.pop()
        if oid in seen or oid in buffer or has(oid):
            continue
        seen.add(oid)
        kind, data = read(oid)
        buffer.hold(oid, kind, data)
        copied += 1
        if is_tree:
            stack.extend(_children(data))
    return copied


def _on_disk(target: GitHandle) -> Callable[[ObjectId], bool]:
    """Whether `target` has an object on disk. Its own pack and loose backends are asked
    directly: the object database refreshes every backend after each miss, and most of what a
    sync looks for is missing (~10 us a miss against ~1.5, measured). Only whether a loose file
    exists is asked, so libgit2 never inflates one (storage.loose)."""
    objects_dir = os.path.join(target.path, "objects")
    packs, loose = pygit2.OdbBackendPack(objects_dir), pygit2.OdbBackendLoose(objects_dir, 1, False)
    return lambda oid: packs.exists(oid) or loose.exists(oid)


def _read(odb: pygit2.Odb, objects_dir: str, oid: ObjectId) -> tuple[int, bytes]:
    """An object's (git type number, content): what a publish just made is loose, so its file
    is read first, by the loose-object guard's own reader, without the callbacks around it."""
    name = str(oid)
    try:
        return read_loose(f"{objects_dir}/{name[:2]}/{name[2:]}", name)
    except FileNotFoundError:
        kind, data = odb.read(oid)
        return int(kind), data


def _children(tree: bytes) -> Iterator[tuple[ObjectId, bool]]:
    """(id, is a tree) of each entry of a tree object's content."""
    at, end = 0, len(tree)
    while at < end:
        nul = tree.index(b"\0", at)
        yield pygit2.Oid(raw=tree[nul + 1 : nul + 21]), tree.startswith(b"40000 ", at)
        at = nul + 21

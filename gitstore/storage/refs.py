"""Refs: read them, move them with compare-and-swap, and clear locks left by dead writers.

Reads go through libgit2 (a loose file, else a binary search of the sorted packed-refs).
Writes are gitstore's own, with git's lock-file protocol, so git, libgit2 and gitstore exclude
one another: libgit2's writer scans every packed ref on each write and reports a lost race in
four different ways (shared/research/reliability-checklist.md fact 2). Here a held lock is
retried, a moved ref is StaleVersion, and a lock held past the budget is Busy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pygit2

from gitstore.errors import Busy, StaleVersion, StorageFull
from gitstore.storage import durability, fencing, journal
from gitstore.storage.commits import CommitId, GitHandle, Signature, TreeId
from gitstore.storage.files import fsync_dir
from gitstore.storage.lockfiles import RETRY_BUDGET_SECONDS, STALE_LOCK_SECONDS, create_exclusively, remove_if_older
from gitstore.storage.packed_refs import update_refs_packed

_HEX_LENGTH = 40


def read_ref(repo: GitHandle, name: str) -> CommitId | None:
    """The commit a ref points at, or None if there is no such ref."""
    ref = repo.references.get(name)
    return None if ref is None else ref.target  # type: ignore[return-value]


def refs_under(repo: GitHandle, prefix: str) -> dict[str, CommitId]:
    """Every ref whose name starts with `prefix`, by the rest of its name, with its commit."""
    found = {}
    for name in repo.references:
        if name.startswith(prefix):
            found[name[len(prefix) :]] = repo.references[name].target
    return found  # type: ignore[return-value]


def commit_on_ref(
    repo: GitHandle,
    ref: str,
    *,
    expected: CommitId | None,
    author: Signature,
    message: str,
    tree: TreeId,
) -> CommitId:
    """Create a commit on `ref` whose parent is `expected`, only if `ref` still points there.

    `expected=None` means the ref must not exist yet. Raises StaleVersion if the ref moved.
    """
    current = read_ref(repo, ref)
    if current != expected:
        raise StaleVersion(f"{ref} has moved", ref=ref, current=current, expected=expected)
    parents = [] if expected is None else [expected]
    with disk_errors():
        commit = CommitId(repo.create_commit(None, author, author, message, tree, parents))
    set_ref(repo, ref, expected=expected, new=commit)
    return commit


def set_ref(repo: GitHandle, ref: str, *, expected: CommitId | None, new: CommitId) -> None:
    """Point `ref` at `new` if it still points at `expected` (None: must not exist).

    gitstore writes refs itself, with git's protocol: create `<ref>.lock` exclusively, compare
    under it, write, make it and every object written before it durable, rename it over the
    ref. libgit2 does the same but first loads and scans every packed ref on each write
    (1.7 ms a write with 100,000 packed refs, measured), and holds the GIL through its fsync."""
    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
    delay = 0.002
    while True:
        try:
            _write_ref(repo, ref, expected, new)
            return
        except _LockHeld:
            current = read_ref(repo, ref)
            if current != expected:
                raise StaleVersion(f"{ref} has moved", ref=ref, current=current, expected=expected) from None
            if time.monotonic() > deadline:
                if clear_stale_ref_lock(repo, ref):
                    deadline = time.monotonic() + RETRY_BUDGET_SECONDS
                    continue
                raise Busy(f"{ref} is locked by another writer", ref=ref) from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.1)
        except OSError as exc:
            _raise_if_disk_full(exc)
            raise


class _LockHeld(Exception):
    """Someone else holds the ref's lock file."""


def _write_ref(repo: pygit2.Repository, ref: str, expected: pygit2.Oid | None, new: pygit2.Oid) -> None:
    _write_refs(repo, [(ref, expected, new)])


def set_refs(repo: pygit2.Repository, moves: Sequence[tuple[str, pygit2.Oid | None, pygit2.Oid]]) -> None:
    """`set_ref` for several refs at once, with one durability barrier for them all: each
    `(ref, expected, new)` is compared under its own lock file, the lock files and every object
    written before them are made durable together, then each is renamed over its ref and each
    folder fsynced once. If any ref has moved or is locked, none moves: the error is raised
    with every lock file removed, and the caller may move them one at a time to learn which.

    For writers that queue behind one lock (group commit): a syncfs and a folder fsync cost a
    millisecond or more each on a shared disk, and here they are paid once for the group."""
    try:
        _write_refs(repo, moves)
    except _LockHeld:
        raise Busy("a ref is locked by another writer") from None
    except OSError as exc:
        _raise_if_disk_full(exc)
        raise


def _write_refs(repo: pygit2.Repository, moves: Sequence[tuple[str, pygit2.Oid | None, pygit2.Oid]]) -> None:
    """git's lock-file protocol for each ref; raises _LockHeld (and moves none) if a lock file
    is already there."""
    root = repo.path  # ends with a separator
    taken: list[tuple[str, str, int]] = []  # (lock file or "" once renamed, ref file, fd or -1)
    try:
        for ref, expected, new in moves:
            path = f"{root}{ref}"
            lock = f"{path}.lock"
            try:
                fd = _create_lock(lock)
            except FileNotFoundError:  # the ref's folder does not exist yet
                _make_folders(root, os.path.dirname(path))
                fd = _create_lock(lock)
            taken.append((lock, path, fd))
            current = _read_under_lock(repo, ref, path)
            if current != expected:
                raise StaleVersion(f"{ref} has moved", ref=ref, current=current, expected=expected)
            os.write(fd, f"{new}\n".encode())
        # The commit point is next: in cluster mode, only the owner at its epoch gets past here.
        fencing.check(root)
        journaled = [(ref, expected, new, True) for ref, expected, new in moves]
        with durability.refs_moving(root, [fd for _, _, fd in taken], journaled):
            for i, (lock, path, fd) in enumerate(taken):
                os.close(fd)
                taken[i] = (lock, path, -1)
            for i, (lock, path, _) in enumerate(taken):
                os.rename(lock, path)
                taken[i] = ("", path, -1)
    except BaseException:
        for lock, _, fd in taken:
            if fd != -1:
                os.close(fd)
            if lock:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
        raise
    if durability.sync_folders():
        for folder in sorted({os.path.dirname(path) for _, path, _ in taken}):
            fsync_dir(folder)


def _create_lock(lock: str) -> int:
    fd = create_exclusively(lock)
    if fd is None:
        raise _LockHeld
    return fd


def _read_under_lock(repo: pygit2.Repository, ref: str, path: str) -> pygit2.Oid | None:
    """The ref's value, read while holding its lock: the loose file, else packed-refs."""
    try:
        with open(path, "rb") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return read_ref(repo, ref)  # libgit2 binary-searches a sorted packed-refs
    except IsADirectoryError:
        raise StaleVersion(f"{ref} is a folder of other refs", ref=ref) from None
    if len(text) != _HEX_LENGTH:
        # A symbolic ref, or damage: not something a compare-and-swap of commits may replace.
        raise StaleVersion(f"{ref} does not hold a commit id", ref=ref)
    return pygit2.Oid(hex=text.decode())


def _make_folders(root: str, folder: str) -> None:
    """Create `folder` (inside `root`) and make each new folder's name durable."""
    missing = []
    while not os.path.isdir(folder) and folder.startswith(root):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(made)
        if durability.sync_folders():
            fsync_dir(os.path.dirname(made))


def delete_ref(repo: GitHandle, ref: str) -> None:
    """Remove `ref` (loose and packed). Only for refs the caller's RepoLock guards. With the
    journal, the deletion is recorded first: a replay must not bring back a ref whose
    creation is still in the journal."""
    current = read_ref(repo, ref)
    if current is None:
        return
    fencing.check(repo.path)
    if durability.method() == "journal" or journal.has_journal(repo.path):
        with journal.journal_for(repo.path).appended([journal.Move(ref, current, None)]):
            pass
    repo.references.delete(ref)


def move_ref(repo: GitHandle, ref: str, new: CommitId) -> None:
    """Point `ref` at `new` whatever it holds now. Only for refs the caller's RepoLock guards,
    where nobody else can move them, so the compare-and-swap here only guards against outsiders."""
    while True:
        try:
            set_ref(repo, ref, expected=read_ref(repo, ref), new=new)
            return
        except StaleVersion:
            continue


@contextmanager
def disk_errors() -> Iterator[None]:
    """Turn a full disk, wherever libgit2 hits it (objects, refs), into StorageFull."""
    try:
        yield
    except (pygit2.GitError, OSError, SystemError) as exc:
        _raise_if_disk_full(exc)
        raise


def _raise_if_disk_full(exc: BaseException) -> None:
    if isinstance(exc, SystemError) and exc.__context__ is not None:
        # How pygit2 reports an object write that failed in gitstore's object backend while
        # libgit2 claimed success (git_commit_create does; see storage.loose): the real error
        # is the context.
        exc = exc.__context__
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        raise StorageFull("no space left on the device") from exc
    if "no space left" in str(exc).lower():
        raise StorageFull("no space left on the device") from exc


def ref_lock_path(repo: pygit2.Repository, ref: str) -> Path:
    return Path(repo.path) / f"{ref}.lock"


def clear_stale_ref_lock(repo: pygit2.Repository, ref: str, *, older_than: float = STALE_LOCK_SECONDS) -> bool:
    """Remove `ref`'s .lock if it is older than `older_than` seconds. Call only under a RepoLock."""
    return remove_if_older(ref_lock_path(repo, ref), older_than)


#: Where a writer of refs leaves a lock file: under refs/, HEAD's, packed-refs'. Sweeping all of
#: them is safe only while every RepoLock of the repository is held (startup repair, an
#: erasure's finish), when any lock file there was left by a dead writer.
EVERY_REF_LOCK = ("refs", "HEAD.lock", "packed-refs.lock")


def sweep_stale_locks(repo: pygit2.Repository, prefixes: Iterable[str], *, older_than: float = 0.0) -> list[str]:
    """Remove `.lock` files under the given ref prefixes. Call only while holding every RepoLock
    that guards those refs, so no live gitstore writer can own them."""
    removed = []
    root = Path(repo.path)
    for prefix in prefixes:
        base = root / prefix
        if not base.exists():
            continue
        candidates = [base] if base.is_file() else base.rglob("*.lock")
        for path in candidates:
            if not path.name.endswith(".lock"):
                continue
            try:
                if time.time() - path.stat().st_mtime >= older_than:
                    path.unlink()
                    removed.append(str(path.relative_to(root)))
            except FileNotFoundError:
                pass
    return removed


# Above this many refs, rewriting packed-refs once beats one locked, fsynced file per ref ...
PACKED_THRESHOLD = 32
# ... unless packed-refs is big: rewriting it whole costs about as much as a loose write for
# every 100 refs it holds (0.7 s at 190,000 refs, bench.scale); housekeeping packs them later.
_PACKED_REFS_PER_LOOSE_WRITE = 100
_PACKED_REF_LINE_BYTES = 64  # "<40 hex> refs/drafts/<key>\n"


def update_refs(repo: GitHandle, updates: Mapping[str, CommitId]) -> None:
    """Point each ref at its new target, whatever it holds now. Only for refs the caller's
    RepoLock guards. Many refs go through one packed-refs rewrite, a few as loose refs."""
    stale = {name: oid for name, oid in updates.items() if read_ref(repo, name) != oid}
    if len(stale) > max(PACKED_THRESHOLD, _packed_ref_count(repo) // _PACKED_REFS_PER_LOOSE_WRITE):
        update_refs_packed(repo, stale)
        return
    for name, oid in stale.items():
        move_ref(repo, name, oid)


def _packed_ref_count(repo: pygit2.Repository) -> int:
    """About how many refs packed-refs holds, from its size (reading it is what we avoid)."""
    try:
        return os.stat(f"{repo.path}packed-refs").st_size // _PACKED_REF_LINE_BYTES
    except FileNotFoundError:
        return 0

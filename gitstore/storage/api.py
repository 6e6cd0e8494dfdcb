"""The storage layer's public surface: bare repositories, refs with compare-and-swap, trees.

Only this layer imports pygit2 for writing; layers above speak in keys, commits and files.
"""

from gitstore.storage.git import GitRepository, configure_libgit2, init_bare
from gitstore.storage.history import BlamedLine, blame_file, merge_text, tree_patch
from gitstore.storage.journal import checkpoint as checkpoint_journal
from gitstore.storage.locks import PATIENT, LockBudget, RepoLock, try_flock
from gitstore.storage.missing import missing_object, object_errors
from gitstore.storage.packed_refs import LoosePacked, pack_loose_refs, read_packed_refs, update_refs_packed
from gitstore.storage.packs import Identity, write_commit
from gitstore.storage.refs import (
    clear_stale_ref_lock,
    commit_on_ref,
    delete_ref,
    disk_errors,
    move_ref,
    read_ref,
    set_ref,
    set_refs,
    sweep_stale_locks,
    update_refs,
)
from gitstore.storage.settings import read_settings, write_settings
from gitstore.storage.trees import (
    entity_path,
    read_files,
    shard_of,
    subtree_id,
    tree_id,
    update_aggregate,
    write_files,
)

__all__ = [
    "BlamedLine",
    "GitRepository",
    "Identity",
    "LockBudget",
    "LoosePacked",
    "PATIENT",
    "RepoLock",
    "blame_file",
    "checkpoint_journal",
    "clear_stale_ref_lock",
    "commit_on_ref",
    "configure_libgit2",
    "delete_ref",
    "disk_errors",
    "move_ref",
    "pack_loose_refs",
    "read_packed_refs",
    "entity_path",
    "init_bare",
    "merge_text",
    "missing_object",
    "object_errors",
    "read_files",
    "read_ref",
    "read_settings",
    "set_ref",
    "set_refs",
    "shard_of",
    "subtree_id",
    "sweep_stale_locks",
    "tree_id",
    "tree_patch",
    "try_flock",
    "update_aggregate",
    "update_refs",
    "update_refs_packed",
    "write_commit",
    "write_files",
    "write_settings",
]

"""The storage layer's public surface: bare repositories, refs with compare-and-swap, commits,
trees.

Only this layer imports pygit2 (tests/test_architecture.py checks it); layers above speak in
typed ids, commit records, files and keys (gitstore.storage.commits says why the ids are what
they are).
"""

from gitstore.storage.commits import (
    BlobId,
    CommitId,
    CommitRecord,
    GitHandle,
    ObjectId,
    Signature,
    TreeId,
    commit_id,
    commit_message,
    commit_tree,
    find_commit,
    first_parent,
    first_parent_commits,
    first_parent_history,
    gitstore_signature,
    has_object,
    history_oldest_first,
    is_ancestor,
    is_commit,
    read_commit,
    signature,
    signature_time,
)
from gitstore.storage.durability import method as fsync_method
from gitstore.storage.durability import use_method as use_fsync_method
from gitstore.storage.fencing import check as check_fence
from gitstore.storage.fencing import guard as guard_repository
from gitstore.storage.fencing import guarded as guarded_repositories
from gitstore.storage.fencing import refusing_when_fenced
from gitstore.storage.fencing import unguard as unguard_repository
from gitstore.storage.fetching import (
    Fetched,
    RefList,
    clone_refs,
    fetch_refs,
    pin_refs,
    ref_list,
    refs_differing,
)
from gitstore.storage.files import fsync_dir, sync_file_system, write_atomically
from gitstore.storage.git import GitRepository, configure_libgit2, create_bare, init_bare, open_bare
from gitstore.storage.history import BlamedLine, blame_file, merge_text, tree_patch
from gitstore.storage.journal import checkpoint as checkpoint_journal
from gitstore.storage.journal import objects_held, open_journal, receive_record, release_journal
from gitstore.storage.lock_order import LOCK_ORDER, LockName, in_order, in_order_if_free, repo_lock
from gitstore.storage.locks import PATIENT, LockBudget, RepoLock, try_flock
from gitstore.storage.loose import guarded_odb, read_loose
from gitstore.storage.missing import missing_object, object_errors
from gitstore.storage.objects import copy_missing_trees, gathered, write_if_large
from gitstore.storage.pack_fetch import fetch_objects
from gitstore.storage.packed_refs import LoosePacked, pack_loose_refs, read_packed_refs, update_refs_packed
from gitstore.storage.packs import Identity, write_commit
from gitstore.storage.per_repository import PerRepository
from gitstore.storage.refs import (
    EVERY_REF_LOCK,
    PACKED_THRESHOLD,
    clear_stale_ref_lock,
    commit_on_ref,
    delete_ref,
    disk_errors,
    move_ref,
    read_ref,
    refs_under,
    set_ref,
    set_refs,
    sweep_stale_locks,
    update_refs,
)
from gitstore.storage.replication import register as register_shipper
from gitstore.storage.replication import unregister as unregister_shipper
from gitstore.storage.settings import read_settings, write_settings
from gitstore.storage.space import after_commit_point, ensure_room
from gitstore.storage.trees import (
    TreeEntry,
    aggregate_entities,
    blob_at,
    entity_path,
    entry_id,
    read_blob,
    read_files,
    shard_of,
    subtree_id,
    tree_entries,
    tree_id,
    update_aggregate,
    write_files,
)

__all__ = [
    "EVERY_REF_LOCK",
    "LOCK_ORDER",
    "PerRepository",
    "PACKED_THRESHOLD",
    "PATIENT",
    "BlamedLine",
    "BlobId",
    "CommitId",
    "CommitRecord",
    "Fetched",
    "GitHandle",
    "GitRepository",
    "Identity",
    "LockBudget",
    "LockName",
    "LoosePacked",
    "ObjectId",
    "RefList",
    "RepoLock",
    "Signature",
    "TreeEntry",
    "TreeId",
    "after_commit_point",
    "aggregate_entities",
    "blame_file",
    "blob_at",
    "check_fence",
    "checkpoint_journal",
    "objects_held",
    "open_journal",
    "receive_record",
    "register_shipper",
    "release_journal",
    "unregister_shipper",
    "clear_stale_ref_lock",
    "commit_id",
    "commit_message",
    "commit_on_ref",
    "clone_refs",
    "commit_tree",
    "configure_libgit2",
    "copy_missing_trees",
    "create_bare",
    "delete_ref",
    "disk_errors",
    "ensure_room",
    "entity_path",
    "entry_id",
    "fetch_objects",
    "fetch_refs",
    "find_commit",
    "first_parent",
    "first_parent_commits",
    "first_parent_history",
    "fsync_dir",
    "fsync_method",
    "gathered",
    "gitstore_signature",
    "guard_repository",
    "guarded_odb",
    "guarded_repositories",
    "has_object",
    "history_oldest_first",
    "in_order",
    "in_order_if_free",
    "init_bare",
    "is_ancestor",
    "is_commit",
    "merge_text",
    "missing_object",
    "move_ref",
    "object_errors",
    "open_bare",
    "pin_refs",
    "pack_loose_refs",
    "read_blob",
    "read_commit",
    "read_files",
    "read_loose",
    "read_packed_refs",
    "read_ref",
    "read_settings",
    "ref_list",
    "refs_differing",
    "refs_under",
    "repo_lock",
    "set_ref",
    "set_refs",
    "shard_of",
    "signature",
    "signature_time",
    "subtree_id",
    "sweep_stale_locks",
    "sync_file_system",
    "tree_entries",
    "tree_id",
    "tree_patch",
    "try_flock",
    "refusing_when_fenced",
    "unguard_repository",
    "update_aggregate",
    "update_refs",
    "update_refs_packed",
    "use_fsync_method",
    "write_atomically",
    "write_commit",
    "write_files",
    "write_if_large",
    "write_settings",
]

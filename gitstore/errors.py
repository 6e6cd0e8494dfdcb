"""Every error gitstore raises, by meaning. None of them knows about HTTP.

    GitstoreError
    ├── NotFound
    │   ├── RepositoryNotFound
    │   ├── EntityNotFound
    │   ├── VersionNotFound
    │   └── NotAContainer         that version of the entity has no members manifest
    ├── AlreadyExists
    │   └── RepositoryExists
    ├── Conflict
    │   ├── KeyRetired            the key belonged to a pruned entity, whose history keeps it
    │   ├── StaleVersion          a compare-and-swap lost: the ref is not where the caller said
    │   ├── BasePathTaken         another entity holds that base_path in the same store
    │   ├── TranslationTaken      another entity is already that document's translation in that locale
    │   ├── DraftPending          unpublishing needs the draft to be what is live
    │   ├── NotFastForward        publishing would rewind the published ref
    │   └── MergeConflict         a stale edit overlaps a newer one; carries `conflicts`
    ├── InvalidInput              carries `errors`: [{"loc": [...], "msg": ...}]
    │   ├── InvalidName           a repository name or entity key breaks the naming rules
    │   ├── InvalidDocument       a body that is valid JSON but not a valid entity
    │   └── InvalidBundle         an import that cannot be read safely: not an archive, a path
    │                             outside it, a link, too many or too large entries
    ├── Unpublished               what is live was taken down (seed 001's unpublish)
    │   ├── Gone                  ... and is gone (HTTP 410)
    │   └── Redirected            ... and now lives at `alternative_path`
    ├── Busy                      a lock stayed held past the retry budget; safe to retry
    ├── Cluster                   cluster mode (gitstore.cluster): nodes, owners, the control plane
    │   ├── ControlPlaneUnavailable   PostgreSQL cannot be reached; writes are refused (retryable)
    │   ├── NotOwner              this node may not write the repository now (moved, fenced); retry
    │   ├── OwnerUnavailable      the repository's owner node is not answering (retryable)
    │   ├── NoNodeAvailable       no active, live node to place a new repository on (retryable)
    │   ├── NodeNameClash         another live process already holds this node name
    │   ├── UnknownNode           no node by that name
    │   ├── NodeDown              the node named is down (or not alive)
    │   ├── MoveInProgress        the repository is already moving (or fenced for a move)
    │   ├── MoveToOwner           the repository already lives on that node
    │   ├── MoveFailed            a move could not finish (the source did not answer, the copies
    │   │                         differ): it was undone, the source serves on
    │   ├── ReplicationFactorTooHigh  more copies asked for than active nodes; nothing created
    │   ├── ReplicaBehind         the replica is not in the in-sync set: never promoted
    │   ├── NotAReplica           the node named holds no replica of the repository
    │   ├── PromotionLost         the owner changed (or the repository began to move) meanwhile
    │   ├── ReplicaOutOfSync      a replica refused a round (a gap, an older epoch): it catches up
    │   └── ReplicationFailed     a round reached neither every in-sync replica nor PostgreSQL to
    │                             drop one: refused, nothing acknowledged (retryable)
    ├── StorageFull               the disk is full; nothing was written
    ├── CorruptObject             a git object on disk is damaged (truncated, garbled)
    ├── DamagedBackup             a backup file is missing, truncated or does not match its manifest
    ├── BackupUnavailable         the backup target (a directory, an S3 bucket) cannot be read or written
    └── BadSetting                a GITSTORE_* variable holds what its setting cannot be (gitstore.environment)

The API layer maps each class to a status and a problem type in one table (api/problems.py);
tests/test_architecture.py fails for a class defined here without its own row there.
"""

from __future__ import annotations

from typing import Any


class GitstoreError(Exception):
    """Root of every error gitstore raises on purpose."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(GitstoreError):
    """The thing asked for does not exist (or is not visible in the view asked for)."""


class RepositoryNotFound(NotFound):
    """No content repository by that name."""


class EntityNotFound(NotFound):
    """No entity by that key in the view asked for (draft or published)."""


class VersionNotFound(NotFound):
    """The entity has no such version or commit."""


class NotAContainer(NotFound):
    """The entity (at that version) is not a container: it has no members manifest."""


class AlreadyExists(GitstoreError):
    """Creating something that is already there."""


class RepositoryExists(AlreadyExists):
    """A content repository by that name already exists."""


class Conflict(GitstoreError):
    """The request is well formed but clashes with the current state."""


class KeyRetired(Conflict):
    """The key belonged to an entity that was pruned: its history keeps the key (gitstore.entities.pruned)."""


class StaleVersion(Conflict):
    """A precondition failed: the draft (or published) tip is not the commit the caller named.

    `extra["current"]` holds the commit the ref points at now (None if the entity is absent).
    """


class BasePathTaken(Conflict):
    """Another entity already holds this base_path in the same store (draft or live)."""


class TranslationTaken(Conflict):
    """Another entity already is this document's translation in this locale (seed 002:
    a document is content_id + locale)."""


class DraftPending(Conflict):
    """Unpublishing takes down what is live; the draft has changes that are not, so the
    caller must publish or discard them first (or ask for them to be discarded)."""


class NotFastForward(Conflict):
    """Publishing that commit would move the published ref backwards or sideways."""


class MergeConflict(Conflict):
    """A change made on an old version overlaps a newer change to the same field or lines.

    `extra["conflicts"]` lists each as {"path", "base", "ours", "theirs"}.
    """


class InvalidInput(GitstoreError):
    """The input breaks a rule. `extra["errors"]` lists each problem with its location."""


class InvalidName(InvalidInput):
    """A repository name or an entity key is not allowed."""


class InvalidDocument(InvalidInput):
    """An entity document is not valid."""


class InvalidBundle(InvalidInput):
    """A bundle that is refused before its content is looked at: it is not the archive it
    claims to be, or it reaches outside itself (`..`, absolute paths, links, devices), repeats
    a path, or expands past a limit (a zip bomb)."""


class Unpublished(GitstoreError):
    """The live version was unpublished. `extra` carries `explanation` and `alternative_path`."""


class Gone(Unpublished):
    """The live version was unpublished as gone."""


class Redirected(Unpublished):
    """The live version was unpublished as a redirect to `extra["alternative_path"]`."""


class Busy(GitstoreError):
    """A git lock stayed held by someone else past the retry budget. Retrying later is safe."""


class StorageFull(GitstoreError):
    """The disk is full. Nothing was written."""


class CorruptObject(GitstoreError):
    """A git object on disk is damaged: truncated, not a zlib stream, or not hashing to its
    name. Retrying does not help; `gitstore fsck` finds every such object. `extra` carries
    `oid`, `path` and `problem` for logs and fsck, never for callers."""


class DamagedBackup(GitstoreError):
    """A backup cannot be trusted: a file its manifest lists is missing or does not hash to its
    sha256, or a manifest is not one. `extra["file"]` names the file (`<backup id>/<path>`);
    nothing was restored."""


class BackupUnavailable(GitstoreError):
    """The backup target cannot be reached, read or written (no such bucket, no credentials, a
    directory that cannot be created). Nothing was restored; a backup cut short by it is not
    listed."""


class Cluster(GitstoreError):
    """Cluster mode (gitstore.cluster): who owns which repository, and the nodes that do."""


class ControlPlaneUnavailable(Cluster):
    """PostgreSQL, the control plane, cannot be reached. A write is refused (its owner cannot be
    checked, so it fails closed); retrying once PostgreSQL is back succeeds. The detail names
    host:port, never the password."""


class NotOwner(Cluster):
    """This node may not write the repository now: another node owns it, or its epoch moved (a
    move fenced it). Nothing was written; retrying reaches the owner. `extra["name"]` is the
    repository."""


class OwnerUnavailable(Cluster):
    """The repository lives on a node that is not answering (down, killed, paused). The rest of
    the cluster serves on; retry later. `extra` names the repository and the node."""


class NoNodeAvailable(Cluster):
    """No active, live node to place a new repository on."""


class NodeNameClash(Cluster):
    """Another live process (another incarnation, heartbeating) already holds this node name."""


class UnknownNode(Cluster):
    """No node by that name in the cluster."""


class NodeDown(Cluster):
    """The node named is down or draining, or has not sent a heartbeat lately."""


class MoveInProgress(Cluster):
    """The repository is already moving (or fenced for a move): one move at a time."""


class MoveToOwner(Cluster):
    """The repository already lives on the node it was asked to move to."""


class MoveFailed(Cluster):
    """Moving a repository to another node could not finish: the node it lives on did not
    answer, a git fetch from it failed, or the copy did not come out equal to it. Everything
    before the flip of its route is undone, so the repository stays where it was."""


class ReplicationFactorTooHigh(Cluster):
    """A repository cannot have more copies than the cluster has nodes (each copy on a node of
    its own). Nothing was created."""


class ReplicaBehind(Cluster):
    """The replica named is not in the repository's in-sync set: it may lack acknowledged
    writes, so it is never promoted (GitLab Praefect MR 3689). Nothing changed."""


class NotAReplica(Cluster):
    """The node named holds no replica of the repository (it may own it already): there is
    nothing there to promote."""


class PromotionLost(Cluster):
    """An operator's promotion found the repository changed under it: another node took it
    over, or it began to move. Nothing changed; look at the cluster again."""


class ReplicaOutOfSync(Cluster):
    """A replica refused a primary's record: a gap in the sequence, an older epoch, or a ref
    that does not hold what the record expects. The primary drops it from the in-sync set, and
    it catches up again from a sealed copy."""


class ReplicationFailed(Cluster):
    """A round could not be made durable on every in-sync replica, and the replica that did not
    answer could not be taken out of the in-sync set either (the control plane did not answer,
    or the epoch moved). Nothing was acknowledged; retry."""


class BadSetting(GitstoreError):
    """An environment variable (GITSTORE_*) holds what its setting cannot be: read at start, so
    the process stops before it serves (`gitstore serve` exits 2 with the message)."""

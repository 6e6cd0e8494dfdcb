"""Erasure: a legal takedown of an entity's content, one version or every version, from every
copy gitstore keeps (ADR 0009).

Git cannot forget bytes that a commit reaches, and readers fetch by SHA, so erasing means
rewriting: every version that holds an erased file gets a redacted tree (its text fields gone,
`entity.json` with its title, base_path and inline fields replaced), and so every commit after
it on the entity's branch, and every commit of `draft` and `main` from the first that held
it, gets a new id. Commits keep their authors, times, messages and order, so version numbers,
publish numbers and event cursors mean what they meant. The rest stays as it is:

- other entities' refs, hence their ETags, are untouched;
- a container that pins an erased entity's commit keeps its manifest as committed: the
  record maps each old id to its new one, and pins are read through it
  (gitstore.entities.erasures);
- the record itself, on `refs/meta/erasures`, says what was erased, by whom, when and why,
  and is the one commit point: a plan of every ref move is written, then the record, then
  the refs move; a crash before the record leaves nothing changed (the new objects are
  garbage), a crash after it is finished by `finish_erasures` at startup.

After the refs move, the derived index is rebuilt and compacted (SQLite keeps deleted rows in
free pages), the public copy is rebuilt from scratch, and the old objects are dropped from
packs and loose files.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gitstore.entities.api import (
    ENTITY_FILE,
    ERASURES_FILE,
    ERASURES_REF,
    TEXT_DIR,
    Author,
    fold_drafts,
    forget_cached,
    roll_forward_drafts,
    signature,
)
from gitstore.errors import Conflict, EntityNotFound, InvalidInput, VersionNotFound
from gitstore.names import validate_key
from gitstore.publishing.api import rebuild_live_mirror, roll_forward
from gitstore.repository import DRAFT, MAIN, ContentRepository, draft_ref, published_ref
from gitstore.storage.api import (
    EVERY_REF_LOCK,
    CommitId,
    CommitRecord,
    GitHandle,
    ObjectId,
    TreeId,
    checkpoint_journal,
    commit_id,
    commit_tree,
    ensure_room,
    entity_path,
    entry_id,
    history_oldest_first,
    in_order,
    read_blob,
    read_commit,
    read_ref,
    read_settings,
    subtree_id,
    sweep_stale_locks,
    tree_entries,
    update_aggregate,
    update_refs,
    write_atomically,
    write_commit,
    write_files,
    write_settings,
)
from gitstore.upkeep.api import reindex

__all__ = ["ERASED_TITLE", "Erasure", "erase", "erasures", "finish_erasures"]

#: What an erased version's title reads.
ERASED_TITLE = "[erased]"

_SHA = re.compile(r"\b[0-9a-f]{40}\b")


@dataclass(frozen=True, slots=True)
class Erasure:
    """One erasure, as its record on `refs/meta/erasures` keeps it."""

    id: str
    key: str
    version: int | None  # None: every version
    reason: str
    by: Author
    at: datetime
    refs: dict[str, tuple[str, str]]  # ref -> (before, after)
    commits: dict[str, str]  # every rewritten commit of the entity: old id -> new id


def erase(repo: ContentRepository, key: str, *, author: Author, reason: str, version: int | None = None) -> Erasure:
    """Erase `key`'s content: version `version` (the files it introduced, wherever they recur)
    or, with None, every version. Returns the record.

    Raises:
        InvalidInput: no reason, or a version below 1.
        EntityNotFound: `key` has no draft branch.
        VersionNotFound: `key` has no such version.
        Conflict: that version brought no content of its own (a publish, an unpublish, a
            restore of older content): erase the version that did.
    """
    validate_key(key)
    _check_request(reason, version)
    storage = repo.storage
    with in_order(storage, "housekeeping", "publish", "drafts"):
        finish_erasures(repo)
        roll_forward(repo)
        roll_forward_drafts(repo)
        fold_drafts(repo)  # every change on a ref, none waiting in the index
        git = storage.git
        tip = read_ref(git, draft_ref(key))
        if tip is None:
            raise EntityNotFound(f"no entity {key!r} in {repo.name!r}", key=key)
        history = history_oldest_first(git, tip)
        records = read_settings(git, ERASURES_REF, ERASURES_FILE)
        erasure_id = f"{len(records) + 1:04d}"
        rewrite = _Rewrite(git, key, _erased_blobs(repo, key, history, version), erasure_id)
        rewrite.branch(history)
        moves = {draft_ref(key): (tip, rewrite.commit(tip))}
        live = read_ref(git, published_ref(key))
        if live is not None:
            moves[published_ref(key)] = (live, rewrite.commit(live))
        for aggregate in (DRAFT, MAIN):  # draft first: main's messages name draft commits
            head = read_ref(git, aggregate)
            if head is not None:
                moves[aggregate] = (head, rewrite.aggregate(head))
        at = datetime.now(UTC).replace(microsecond=0)
        erasure = Erasure(
            erasure_id,
            key,
            version,
            reason,
            author,
            at,
            {ref: (str(old), str(new)) for ref, (old, new) in moves.items() if old != new},
            {str(old): str(new) for old, new in rewrite.entity_commits.items()},
        )
        ensure_room(repo.path)
        # The plan first, durably: once the record exists, a crash is finished from it.
        _write_plan(repo, erasure_id, rewrite.replaced)
        sig = signature(author)
        write_settings(
            git,
            ERASURES_REF,
            ERASURES_FILE,
            {**records, erasure_id: _record(erasure)},
            author=sig,
            message=f"Erase {key}" + (f" version {version}" if version else " (every version)") + f"\n\n{reason}\n",
        )
        _finish(repo, erasure)
    return erasure


def erasures(repo: ContentRepository) -> list[Erasure]:
    """Every erasure of the repository, oldest first."""
    records = read_settings(repo.storage.git, ERASURES_REF, ERASURES_FILE)
    return [_from_record(erasure_id, record) for erasure_id, record in sorted(records.items())]


def finish_erasures(repo: ContentRepository) -> list[str]:
    """Finish an erasure a crash interrupted after its commit point, and forget the plan of one
    interrupted before it (nothing had changed). Run at startup; returns the ids finished."""
    plans = sorted(repo.storage.control_dir.glob("erasure-*.plan"))
    if not plans:
        return []
    storage = repo.storage
    finished = []
    # Nothing may be served before a started erasure is finished: wait as long as it takes.
    with in_order(storage, "housekeeping", "publish", "drafts", patient=True):
        # Holding all three, no live writer owns a ref lock: one a kill -9 mid-erasure left
        # behind would refuse the finish's own ref moves (Busy) until it aged out. Repair
        # sweeps them too, but runs after this.
        sweep_stale_locks(storage.git, EVERY_REF_LOCK)
        records = read_settings(storage.git, ERASURES_REF, ERASURES_FILE)
        for plan in plans:
            erasure_id = plan.name[len("erasure-") : -len(".plan")]
            if erasure_id in records:
                _finish(repo, _from_record(erasure_id, records[erasure_id]))
                finished.append(erasure_id)
            else:
                plan.unlink()
    return finished


class _Rewrite:
    """New commits for the entity's branch and for the aggregates, with erased files redacted."""

    def __init__(self, git: GitHandle, key: str, blobs: set[ObjectId], erasure_id: str) -> None:
        self.git = git
        self.key = key
        self.blobs = blobs
        self.erasure_id = erasure_id
        self.trees: dict[TreeId, TreeId] = {}
        self.commits: dict[CommitId, CommitId] = {}  # every rewritten commit
        self.entity_commits: dict[CommitId, CommitId] = {}
        self.replaced: set[ObjectId] = set(blobs)  # what held or led to the erased bytes

    def commit(self, oid: CommitId) -> CommitId:
        return self.commits.get(oid, oid)

    def branch(self, history: list[CommitRecord]) -> None:
        for commit in history:
            tree = self.entity_tree(commit.tree)
            new = self._copy(commit, tree, erased=tree != commit.tree)
            if new != commit.id:
                self.entity_commits[commit.id] = new

    def aggregate(self, head: CommitId) -> CommitId:
        path = entity_path(self.key)
        for commit in history_oldest_first(self.git, head):
            root = commit.tree
            old = subtree_id(self.git, root, path)
            new = self.entity_tree(old) if old is not None else None
            tree = root
            if new != old:
                tree = update_aggregate(self.git, root, {self.key: new})
                shard = entry_id(self.git, root, path.split("/")[0])
                assert shard is not None  # the entity's subtree is in it
                self.replaced.update((root, shard))
            self._copy(commit, tree, erased=False)
        return self.commit(head)

    def entity_tree(self, oid: TreeId) -> TreeId:
        """`oid` with every erased file redacted (itself if it holds none)."""
        done = self.trees.get(oid)
        if done is not None:
            return done
        files: dict[str, bytes] = {}
        changed = False
        text_dir: ObjectId | None = None
        for entry in tree_entries(self.git, oid):
            if entry.name == TEXT_DIR:
                text_dir = entry.id
                for field in tree_entries(self.git, TreeId(entry.id)):
                    if field.id in self.blobs:
                        changed = True
                    else:
                        files[f"{TEXT_DIR}/{field.name}"] = read_blob(self.git, field.id)
            elif entry.name == ENTITY_FILE and entry.id in self.blobs:
                files[ENTITY_FILE] = _redacted(read_blob(self.git, entry.id))
                changed = True
            elif not entry.is_tree:
                files[entry.name] = read_blob(self.git, entry.id)
        new = write_files(self.git, files) if changed else oid
        if changed:
            self.replaced.add(oid)
            if text_dir is not None:
                self.replaced.add(text_dir)
        self.trees[oid] = new
        return new

    def _copy(self, commit: CommitRecord, tree: TreeId, *, erased: bool) -> CommitId:
        parents = [self.commit(p) for p in commit.parents]
        message = _SHA.sub(lambda m: self._renamed(m.group()), commit.message)
        if erased:
            message += f"Gitstore-Erased: {self.erasure_id}\n"
        if tree == commit.tree and parents == list(commit.parents) and message == commit.message:
            return commit.id
        new = write_commit(self.git, commit.author, message, tree, parents)
        self.commits[commit.id] = new
        self.replaced.add(commit.id)
        return new

    def _renamed(self, sha: str) -> str:
        new = self.commits.get(commit_id(sha))
        return sha if new is None else str(new)


def _erased_blobs(repo: ContentRepository, key: str, history: list[CommitRecord], version: int | None) -> set[ObjectId]:
    """The blobs to erase: every content file of every version, or those `version` brought."""
    git = repo.storage.git
    if version is None:
        return {oid for commit in history for oid in _content_blobs(git, commit.tree)}
    sha = repo.index.commit_of_version(key, version)
    if sha is None:
        raise VersionNotFound(f"{key!r} has no version {version}", key=key)
    commit = read_commit(git, commit_id(sha))
    before: set[ObjectId] = set().union(*(_content_blobs(git, commit_tree(git, p)) for p in commit.parents))
    brought = _content_blobs(git, commit.tree) - before
    if not brought:
        raise Conflict(
            f"version {version} of {key!r} brought no content of its own (it publishes, unpublishes or restores "
            "content an earlier version wrote): erase that version instead"
        )
    return brought


def _content_blobs(git: GitHandle, tree: TreeId) -> set[ObjectId]:
    """entity.json and the text fields: what a person wrote (not the manifest, not a notice)."""
    entity = entry_id(git, tree, ENTITY_FILE)
    found = {entity} if entity is not None else set()
    text_dir = entry_id(git, tree, TEXT_DIR)
    if text_dir is not None:
        found.update(entry.id for entry in tree_entries(git, TreeId(text_dir)))
    return found


def _redacted(entity_json: bytes) -> bytes:
    """entity.json without what a person wrote in it; what it is and what it links to stay, so
    the version still reads, and manifests and links that name it still resolve."""
    body = orjson.loads(entity_json)
    body.update(title=ERASED_TITLE, base_path=None, fields={})
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _finish(repo: ContentRepository, erasure: Erasure) -> None:
    """Everything after the commit point; each step may run again after a crash."""
    git = repo.storage.git
    update_refs(
        git,
        {ref: commit_id(new) for ref, (old, new) in erasure.refs.items() if str(read_ref(git, ref)) == old},
    )
    forget_cached()
    reindex(repo)
    repo.index.compact()
    rebuild_live_mirror(repo)
    plan = _plan_path(repo, erasure.id)
    _drop_objects(repo.path, plan.read_text().split() if plan.exists() else [])
    plan.unlink(missing_ok=True)


def _drop_objects(path: Path, objects: list[str]) -> None:
    """Repack what refs reach, which leaves out of every pack what they no longer reach, then
    delete the listed objects left loose (nothing reaches them: a reached one was packed).
    Unlisted loose objects stay: a writer may be about to point a ref at them."""
    checkpoint_journal(str(path))  # the journal's records may hold the erased content
    subprocess.run(
        ["git", "--git-dir", str(path), "repack", "-a", "-d", "-q"],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    for sha in objects:
        (path / "objects" / sha[:2] / sha[2:]).unlink(missing_ok=True)


def _write_plan(repo: ContentRepository, erasure_id: str, objects: set[ObjectId]) -> None:
    write_atomically(_plan_path(repo, erasure_id), "".join(f"{oid}\n" for oid in sorted(objects, key=str)).encode())


def _plan_path(repo: ContentRepository, erasure_id: str) -> Path:
    return repo.storage.control_dir / f"erasure-{erasure_id}.plan"


def _check_request(reason: str, version: int | None) -> None:
    problems = []
    if not reason.strip():
        problems.append({"loc": ["reason"], "msg": "an erasure says why: reason is required"})
    elif len(reason) > 10_000:
        problems.append({"loc": ["reason"], "msg": "at most 10,000 characters"})
    if version is not None and version < 1:
        problems.append({"loc": ["version"], "msg": "versions start at 1"})
    if problems:
        raise InvalidInput("not a valid erasure", errors=problems)


def _record(erasure: Erasure) -> dict[str, object]:
    return {
        "key": erasure.key,
        "version": erasure.version,
        "reason": erasure.reason,
        "by": {"name": erasure.by.name, "email": erasure.by.email},
        "at": erasure.at.isoformat(),
        "refs": {ref: list(pair) for ref, pair in sorted(erasure.refs.items())},
        "commits": dict(sorted(erasure.commits.items())),
    }


def _from_record(erasure_id: str, record: dict[str, object]) -> Erasure:
    by = record["by"]
    assert isinstance(by, dict)
    refs = record["refs"]
    assert isinstance(refs, dict)
    return Erasure(
        erasure_id,
        str(record["key"]),
        record["version"],  # type: ignore[arg-type]
        str(record["reason"]),
        Author(by["name"], by["email"]),
        datetime.fromisoformat(str(record["at"])),
        {ref: (pair[0], pair[1]) for ref, pair in refs.items()},
        record["commits"],  # type: ignore[arg-type]
    )

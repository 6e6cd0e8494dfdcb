"""Publishing: make drafts live, one entity or many, all at once or not at all.

One ref is the commit point: `refs/heads/main`. A publish writes one commit there whose tree
holds every live entity and whose message lists what moved (`Gitstore-Published: key sha`).
The derived pieces follow it: `refs/published/<key>` (renamed after `main` in the same durable
move while they are few, gitstore.publishing.landing) and the index. A crash in between leaves
`main` ahead of them; `roll_forward` (run at startup and before every publish) finishes the
job, and readers consult main's newest entry first (gitstore.entities.snapshots), so nobody
sees half a publish. libgit2's multi-ref transaction is not crash-atomic (measured: kill -9
left partial state 40 times out of 40), which is why it is not the commit point.

Publishes serialise on the repository's publish lock; they never rewind a published ref.
Planning (`prepare_publish`) and landing are separate steps so that publishes queued for the
lock can land together (gitstore.publishing.rounds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from gitstore.entities.api import (
    Author,
    IfMatch,
    Snapshot,
    document_id,
    draft_tip,
    format_message,
    holding,
    is_placeholder,
    leaves,
    load_snapshot,
    newest_publish,
    parse_repeated,
    parse_trailers,
    published_commit,
    roll_forward_drafts,
    signature,
    summary_of,
)
from gitstore.errors import (
    BasePathTaken,
    InvalidInput,
    NotFastForward,
    StaleVersion,
    TranslationTaken,
    VersionNotFound,
)
from gitstore.index.api import PublishedRow, PublishRow
from gitstore.publishing.landing import Prepared, land
from gitstore.repository import MAIN, ContentRepository, published_ref
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    TreeId,
    after_commit_point,
    commit_id,
    commit_tree,
    disk_errors,
    first_parent_history,
    in_order,
    is_ancestor,
    is_commit,
    read_commit,
    read_ref,
    signature_time,
    update_aggregate,
    update_refs,
)

__all__ = [
    "Describe",
    "UPDATE_TYPES",
    "PublishNote",
    "PublishRecord",
    "PublishTarget",
    "PublishedItem",
    "check_note",
    "publish_targets",
    "publish_row",
    "published_row",
    "roll_forward",
]


@dataclass(frozen=True, slots=True)
class PublishTarget:
    """What to publish of one entity: its draft tip, or an older `version` (or `commit`) of its
    branch (only if that is a fast-forward), optionally only if the tip is `expected`."""

    key: str
    version: int | None = None
    expected: IfMatch | None = None
    commit: str | None = None


#: GOV.UK's kinds of publish: a change readers should be told of, a correction, a re-send.
UPDATE_TYPES = ("major", "minor", "republish")
_MAX_CHANGE_NOTE = 10_000


@dataclass(frozen=True, slots=True)
class PublishNote:
    """Why a publish or unpublish happened (GOV.UK's `update_type` and `change_note`): written
    as trailers of its commit on `main`, so the publish log, the feed, `git log main` and the
    public copy all read it from there."""

    update_type: str | None = None
    change_note: str | None = None

    def trailers(self) -> list[tuple[str, str]]:
        return [(n, v) for n, v in (("Update-Type", self.update_type), ("Change-Note", self.change_note)) if v]

    @classmethod
    def of(cls, message: str) -> PublishNote:
        trailers = parse_trailers(message)
        return cls(trailers.get("Update-Type"), trailers.get("Change-Note"))


def check_note(note: PublishNote) -> None:
    """Raises InvalidInput for an unknown update_type, or a change note that is blank, too long,
    or more than one line (a trailer is one line: a line break would let a note write trailers)."""
    problems = []
    if note.update_type is not None and note.update_type not in UPDATE_TYPES:
        problems.append({"loc": ["update_type"], "msg": f"one of {', '.join(UPDATE_TYPES)}"})
    text = note.change_note
    if text is not None:
        if not text.strip():
            problems.append({"loc": ["change_note"], "msg": "a change note says something: leave it out instead"})
        elif len(text) > _MAX_CHANGE_NOTE:
            problems.append({"loc": ["change_note"], "msg": f"at most {_MAX_CHANGE_NOTE:,} characters"})
        elif any(ord(c) < 0x20 or c in "\x7f\x85\u2028\u2029" for c in text):
            problems.append({"loc": ["change_note"], "msg": "one line of text, without control characters"})
    if problems:
        raise InvalidInput("not a valid change note", errors=problems)


@dataclass(frozen=True, slots=True)
class PublishedItem:
    key: str
    commit: str
    version: int
    edition: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One publish operation: its commit on `main` (None if nothing needed publishing).
    `dependents` (filled in by gitstore.links) lists what a renderer must re-present."""

    commit: str | None
    author: Author
    published_at: datetime | None
    items: list[PublishedItem]
    dependents: tuple[str, ...] = ()


#: What a layer above adds to a publish's targets (gitstore.publishing.parts): the targets,
#: with what they bring along. Runs holding the publish lock (and the drafts lock, but for a
#: round planned ahead of it: PublishPart.expand).
Expand = Callable[[list[PublishTarget]], list[PublishTarget]]

#: What a layer above records in a publish commit about each entity it moves: given the rows
#: the index will hold once it is live, key -> the entities to re-present (`Gitstore-Dependents`).
Describe = Callable[[list[PublishedRow]], dict[str, list[str]]]


def publish_targets(
    repo: ContentRepository,
    targets: Sequence[PublishTarget],
    *,
    author: Author,
    note: PublishNote | None = None,
    summary: str | None = None,
    describe: Describe | None = None,
    expand: Expand | None = None,
) -> PublishRecord:
    """Publish every target, and what `expand` adds to them (gitstore.content passes its
    publish parts), in one atomic operation, with `note` saying why and `summary` as the first
    line of its commit on `main` (by default it names what it publishes). With `describe`, the
    commit records what it returns, as facts of that moment (the event feed serves them). The
    keys are valid ones (gitstore.content checked them).

    It holds the publish lock, and the drafts lock from expanding the targets to the commit on
    `main` (gitstore.entities.work; a caller holding them already lends them): the drafts it
    plans from are the drafts when it goes live, and which drafts existed then orders publishes
    among draft changes exactly (gitstore.events), which commit times to the second cannot.

    Raises:
        EntityNotFound: a key has no draft branch.
        StaleVersion: a target's draft tip is not its `expected` commit.
        VersionNotFound: a target names a version its branch does not have.
        NotFastForward: a target would move a published ref backwards.
        BasePathTaken: a target's base_path is live on another entity that is not a placeholder
            (`redirect` or `gone`; a placeholder is deleted in the same publish), or two targets
            share one.
        TranslationTaken: another entity is live as the same document and locale.
        InvalidInput: `note` is not valid (check_note).
    """
    note = note or PublishNote()
    check_note(note)
    with disk_errors(), holding(repo, "publish", roll_forward):
        with holding(repo, "drafts", roll_forward_drafts):
            git = repo.storage.git
            main = read_ref(git, MAIN)
            root = commit_tree(git, main) if main is not None else None
            prepared = prepare_publish(
                repo, targets, author=author, note=note, summary=summary, describe=describe, expand=expand, root=root
            )
            if prepared is None:
                return PublishRecord(None, author, None, [])
            (commit,) = land(repo, main, [prepared])
        # The published refs and the index follow main under the publish lock alone: writers
        # of drafts need not wait for them.
        with after_commit_point(f"the publish {commit}"):
            apply_publish(repo, commit)
    return publish_record(prepared, commit, author)


def prepare_publish(
    repo: ContentRepository,
    targets: Sequence[PublishTarget],
    *,
    author: Author,
    note: PublishNote,
    summary: str | None = None,
    describe: Describe | None = None,
    expand: Expand | None = None,
    root: TreeId | None,
    chosen: dict[str, CommitId] | None = None,
) -> Prepared | None:
    """`publish_targets`' plan and checks, holding the publish and drafts locks, on top of
    aggregate tree `root`; None if nothing needs publishing. Raises what it raises. `chosen`,
    if given, is filled with the commit each target (expanded) asked for, those already live
    too: what the plan read of the live site (gitstore.publishing.rounds)."""
    plan = _plan(repo, expand(list(targets)) if expand is not None else targets, {} if chosen is None else chosen)
    if not plan:
        return None
    displace = _check_live_uniqueness(repo, plan)
    if displace:
        plan.update(_displace(repo, displace))
    git = repo.storage.git
    tree = update_aggregate(git, root, {k: None if s.deleted else s.tree for k, s in plan.items()})
    rows = [published_row(git, k, s.commit) for k, s in sorted(plan.items())]
    described = describe(rows) if describe else {}
    return Prepared(
        plan, tree, signature(author), partial(_message, plan, note=note, summary=summary, described=described)
    )


def publish_record(prepared: Prepared, commit: CommitId, author: Author) -> PublishRecord:
    """What a publish that landed as `commit` answers."""
    items = [PublishedItem(k, str(s.commit), s.version, s.edition, s.deleted) for k, s in sorted(prepared.plan.items())]
    return PublishRecord(str(commit), author, signature_time(prepared.sig), items)


def roll_forward(repo: ContentRepository) -> bool:
    """Make `refs/published/*` and the index agree with `main`. Idempotent; True if it did work."""
    git = repo.storage.git
    main = read_ref(git, MAIN)
    applied = repo.index.meta("main_head")
    if main is None or applied == str(main):
        return False
    with in_order(repo.storage, "publish"):
        for commit in _not_applied(git, main, applied):
            apply_publish(repo, commit)
    return True


def _not_applied(git: GitHandle, main: CommitId, applied: str | None) -> list[CommitId]:
    """The publish commits from the one after `applied` (the index's `main_head`) to `main`,
    oldest first: publishes queued together land as several commits in one durable move
    (gitstore.publishing.rounds), so a crash, or a full disk, after it can leave more than
    `main` itself unapplied. None applied: all of main's history. An `applied` not in main's
    history (not gitstore's doing): `main` alone, as before; a rebuild is the repair's
    (gitstore.upkeep)."""
    if applied is None:
        return list(first_parent_history(git, main))[::-1]
    done = commit_id(applied)
    if not (is_commit(git, done) and is_ancestor(git, done, main)):
        return [main]
    return list(first_parent_history(git, main, stop_at=done))[::-1]


def _plan(
    repo: ContentRepository, targets: Iterable[PublishTarget], chosen_by_key: dict[str, CommitId]
) -> dict[str, Snapshot]:
    git = repo.storage.git
    plan: dict[str, Snapshot] = {}
    for target in targets:
        key = target.key
        tip = draft_tip(repo, key)
        if target.expected is not None and str(tip) != target.expected.commit:
            raise StaleVersion(f"the draft of {key!r} is not at {target.expected.commit}", current=str(tip))
        if target.commit is not None:
            chosen = commit_id(target.commit)
            if not (is_commit(git, chosen) and is_ancestor(git, chosen, tip)):
                raise VersionNotFound(f"{target.commit} is not a version of {key!r}", key=key)
        elif target.version is not None:
            chosen = _commit_of_version(repo, key, target.version)
        else:
            chosen = tip
        chosen_by_key[key] = chosen
        live = published_commit(repo, key)
        if live == chosen:
            continue
        if live is not None and not is_ancestor(git, live, chosen):
            raise NotFastForward(
                f"publishing {key!r} at that version would move what is live backwards; "
                "restore the old version as a new draft and publish that instead",
                key=key,
            )
        snap = load_snapshot(git, chosen)
        if live is None and snap.deleted:
            continue  # deleted before it was ever live: nothing to take down
        plan[key] = snap
    return plan


def _commit_of_version(repo: ContentRepository, key: str, version: int) -> CommitId:
    sha = repo.index.commit_of_version(key, version)
    if sha is None:
        raise VersionNotFound(f"{key!r} has no version {version}", key=key)
    return commit_id(sha)


def _check_live_uniqueness(repo: ContentRepository, plan: dict[str, Snapshot]) -> dict[str, str]:
    """Among live editions (seed 002): one holder per base_path, one translation per document
    and locale. Returns the placeholders to displace (holder -> the key taking its path);
    any other holder refuses the publish."""
    paths: dict[str, str] = {}
    documents: dict[tuple[str, str], str] = {}
    for key, snap in sorted(plan.items()):
        if snap.deleted:
            continue
        doc = snap.document
        if doc.base_path is not None:
            if doc.base_path in paths:
                other = paths[doc.base_path]
                raise BasePathTaken(
                    f"{key!r} and {other!r} would both be live at {doc.base_path!r}",
                    holder=other,
                    base_path=doc.base_path,
                )
            paths[doc.base_path] = key
        document = (document_id(key, doc), doc.locale)
        if document in documents:
            raise TranslationTaken(
                f"{key!r} and {documents[document]!r} would both be live as the {document[1]!r} translation "
                f"of {document[0]!r}",
                holder=documents[document],
                content_id=document[0],
                locale=document[1],
            )
        documents[document] = key
    git = repo.storage.git
    displace: dict[str, str] = {}
    for path, holder in repo.index.live_holders(list(paths)).items():
        if holder == paths[path] or _leaves(plan.get(holder), base_path=path):
            continue
        live = published_commit(repo, holder)
        if live is None or not is_placeholder(load_snapshot(git, live).document):
            raise BasePathTaken(f"base_path {path!r} is live on {holder!r}", holder=holder, base_path=path)
        displace[holder] = paths[path]
    for document, holder in repo.index.live_translation_holders(list(documents)).items():
        if holder != documents[document] and not _leaves(plan.get(holder), document=document):
            raise TranslationTaken(
                f"{holder!r} is live as the {document[1]!r} translation of {document[0]!r}",
                holder=holder,
                content_id=document[0],
                locale=document[1],
            )
    return displace


def _leaves(snap: Snapshot | None, *, base_path: str | None = None, document: tuple[str, str] | None = None) -> bool:
    return snap is not None and leaves(snap.key, snap.document, snap.deleted, base_path=base_path, document=document)


def _displace(repo: ContentRepository, displace: dict[str, str]) -> dict[str, Snapshot]:
    """The deletes that take each placeholder down, to publish with what takes its path. The
    delete was drafted when the new content took the path in the drafts namespace (see
    gitstore.entities); a placeholder whose draft is anything else is someone's work in
    progress, so that refuses the publish."""
    git = repo.storage.git
    ready: dict[str, Snapshot] = {}
    for holder, by in sorted(displace.items()):
        tip = load_snapshot(git, draft_tip(repo, holder))
        if not tip.deleted:
            path = tip.document.base_path
            raise BasePathTaken(
                f"{by!r} would replace the placeholder {holder!r} live at its base_path, but {holder!r} has a "
                "draft of its own; delete or publish that first",
                holder=holder,
                base_path=path,
            )
        ready[holder] = tip
    return ready


def _message(
    plan: dict[str, Snapshot],
    drafts: CommitId | None,
    *,
    note: PublishNote,
    summary: str | None,
    described: dict[str, list[str]],
) -> str:
    keys = sorted(plan)
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    if summary is None:
        summary = f"Publish {shown}" if len(keys) > 1 else f"Publish {keys[0]} version {plan[keys[0]].version}"
    trailers = [("Published", f"{k} {plan[k].commit}") for k in keys] + note.trailers()
    # One line per key, even with none: a publish made before dependents were recorded has no
    # such line, and its events name none rather than today's.
    trailers += [("Dependents", " ".join([k, *described[k]])) for k in keys if k in described]
    return format_message(summary, trailers + ([("Drafts", str(drafts))] if drafts is not None else []))


def apply_publish(repo: ContentRepository, main: CommitId) -> None:
    """Move the derived refs and index to what publish commit `main` says. Idempotent."""
    git = repo.storage.git
    moved = {key: commit_id(sha) for key, sha in newest_publish(repo, main).items()}
    update_refs(git, {published_ref(k): oid for k, oid in moved.items()})
    rows = [published_row(git, key, oid) for key, oid in moved.items()]
    repo.index.record_published(rows, main_head=str(main), publishes=[publish_row(git, main)])


def published_row(git: GitHandle, key: str, commit: CommitId) -> PublishedRow:
    """What the index records when commit `commit` of `key` goes live."""
    snap = load_snapshot(git, commit)
    doc = snap.document
    return PublishedRow(
        key,
        str(commit),
        str(snap.tree),
        doc.base_path,
        doc.type,
        doc.locale,
        not snap.deleted,
        doc.members,
        doc.title,
        document_id(key, doc),
        doc.links,
        doc.unpublishing.type if doc.unpublishing else None,
    )


def publish_row(git: GitHandle, main: CommitId) -> PublishRow:
    """The publish log entry that commit `main` records."""
    commit = read_commit(git, main)
    items = []
    for entry in parse_repeated(commit.message, "Published"):
        key, sha = entry.split(" ", 1)
        snap = load_snapshot(git, commit_id(sha))
        items.append((key, sha, snap.version, snap.deleted))
    note = PublishNote.of(commit.message)
    return PublishRow(
        str(main),
        commit.author.name,
        commit.author.email,
        commit.author.time,
        tuple(items),
        summary_of(commit.message),
        note.update_type,
        note.change_note,
    )

"""Import and export: a repository's entities as one bundle (issue 8).

    import_bundle   read and check a bundle, then write it as drafts in one atomic batch (and
                    publish it, if asked, before anyone else may write); or, as a dry run,
                    say what would change and every problem, writing nothing
    export_bundle   stream a view (draft or published, now or as of a moment) as a bundle

An import is an upsert of the entities in the bundle: an entity of the repository that the
bundle leaves out is left as it is (never deleted). See ADR 0004.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import BinaryIO

from gitstore import content
from gitstore.bundles.format import (
    FORMATS,
    MEDIA_TYPES,
    NDJSON,
    TAR_GZ,
    Problem,
    Version,
    format_name,
    media_type_of,
    version_files,
    version_line,
    versions_from_entries,
    versions_from_lines,
)
from gitstore.bundles.pins import Node
from gitstore.bundles.planning import ImportPlan, Outcome, existing, outcome, plan_import, resolved
from gitstore.bundles.reading import Limits, read_directory, read_entries
from gitstore.bundles.writing import Progress, unreadable, write_bundle
from gitstore.entities.api import Author, Content, DraftChange, folded_draft_head
from gitstore.errors import CorruptObject, GitstoreError, InvalidDocument, InvalidInput, StaleVersion
from gitstore.history import api as history
from gitstore.publishing.api import PublishRecord, PublishTarget
from gitstore.repository import DRAFT, MAIN, ContentRepository
from gitstore.storage.api import (
    CommitId,
    ObjectId,
    commit_id,
    commit_tree,
    first_parent_commits,
    is_ancestor,
    is_commit,
    object_errors,
    read_ref,
    signature_time,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "MEDIA_TYPES",
    "NDJSON",
    "TAR_GZ",
    "ImportReport",
    "Limits",
    "Problem",
    "Version",
    "as_of_from_text",
    "export_bundle",
    "format_name",
    "import_bundle",
    "media_type_of",
    # a bundle's versions one by one, for the samples (which stage history) and the benches
    "read_directory",
    "read_entries",
    "version_files",
    "version_line",
    "versions_from_entries",
]

_SHA = re.compile(r"[0-9a-f]{40}")
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did (or, as a dry run, would do) to the bundle's entities."""

    dry_run: bool
    created: list[str]
    changed: list[str]
    unchanged: list[str]
    pinned_versions: int  # older versions added to members' branches so that pins keep their content
    problems: list[Problem]  # a dry run's; a real import with problems raises instead
    warnings: list[Problem]  # true but allowed: links to entities that are nowhere
    draft_head: str | None  # `refs/heads/draft` after the import (as it is, for a dry run)
    published: PublishRecord | None = None


def import_bundle(
    repo: ContentRepository,
    source: BinaryIO | Path,
    media_type: str,
    *,
    author: Author,
    expected_draft_head: str | None = None,
    publish: bool = False,
    dry_run: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportReport:
    """Import a bundle as drafts: all of it in one commit on `draft`, or nothing. `source` is
    the bundle's bytes, or a directory holding its files (then `media_type` is not used).

    `expected_draft_head` refuses the import if `refs/heads/draft` moved since the caller read
    it (seed 003's dirty writes). With `publish`, the imported entities are published right
    after, still holding the locks, so nothing lands in between.

    Raises:
        InvalidBundle: unreadable or unsafe (a path outside it, a link, a zip bomb), even on a dry run.
        InvalidDocument: the bundle breaks a rule; `errors` lists every problem. Nothing is written.
        StaleVersion: `draft` is not at `expected_draft_head`.
        Conflict subclasses: from publishing, after the drafts landed (the message says so).
    """
    if expected_draft_head is not None and not _SHA.fullmatch(expected_draft_head):
        raise InvalidInput(
            "If-Match names the draft branch's commit: 40 lower-case hex digits",
            errors=[{"loc": ["If-Match"], "msg": "not a 40-hex commit id"}],
        )
    _check_draft_head(repo, expected_draft_head)  # before reading: fail a stale import early
    versions, problems = _read(source, media_type, limits)
    if dry_run:
        plan = plan_import(repo, versions)
        problems += plan.problems
        if problems:  # what would change is moot: nothing would
            would = Outcome([], [], [], 0)
        else:
            would = outcome(plan.view, {node for node, commit in existing(plan).items() if commit is None})
        # Folded: the report's head is the next import's If-Match, which folds before it
        # compares; a head short of acknowledged changes would refuse that import as stale.
        return _report(True, would, problems, plan.warnings, folded_draft_head(repo))
    with content.unit_of_work(repo, publish=publish):
        _check_draft_head(repo, expected_draft_head)
        plan = plan_import(repo, versions)
        problems += plan.problems
        if problems:
            first = problems[0]
            raise InvalidDocument(
                f"the bundle has {len(problems)} problem(s), so nothing was imported; the first: "
                f"{first.entry}: {first.msg}",
                errors=[p.as_error() for p in problems],
            )
        made = _write(repo, plan, author)
        head = read_ref(repo.storage.git, DRAFT)
        record = _publish(repo, plan, author, head) if publish else None
    return _report(False, outcome(plan.view, made), [], plan.warnings, head, record)


def _read(source: BinaryIO | Path, media_type: str, limits: Limits) -> tuple[list[Version], list[Problem]]:
    if isinstance(source, Path):
        return versions_from_entries(read_directory(source, limits))
    entries = read_entries(source, media_type, limits)
    if media_type != NDJSON:
        return versions_from_entries(entries)
    versions, problems = [], []
    for found in versions_from_lines(entries):
        if isinstance(found, Version):
            versions.append(found)
        else:
            problems += found
    return versions, problems


def _check_draft_head(repo: ContentRepository, expected: str | None) -> None:
    if expected is None:
        return
    # Folded: a change acknowledged since the caller read `draft` must count as a change,
    # even if no fold has reached it yet.
    head = folded_draft_head(repo)
    if head is None or str(head) != expected:
        where = "has no draft yet" if head is None else f"is at {head}"
        raise StaleVersion(
            f"the draft branch {where}, not at {expected}: drafts changed since; export again",
            current=str(head) if head is not None else None,
        )


def _write(repo: ContentRepository, plan: ImportPlan, author: Author) -> set[Node]:
    """Write, in one batch, every node whose content is not already here; the nodes that made
    a new commit."""
    view = plan.view
    tips = {key: state.draft_commit for key, state in view.states.items()}
    commits = existing(plan)  # filled in as the batch makes the rest
    made: set[Node] = set()

    def change(node: Node) -> DraftChange:
        def node_content(_current: object) -> tuple[Content, bool]:
            if node.pin is None and node.key in plan.restore:
                snap = plan.restore[node.key]
                return snap.document, snap.deleted
            found = resolved(view, node, commits)
            assert found is not None, f"{node} written before what it pins"
            return found, False

        def landed(commit: ObjectId) -> None:
            if str(commit) != tips.get(node.key):
                made.add(node)
            tips[node.key] = commits[node] = str(commit)

        summary = None if node.pin is None else f"Import {node.key} as pinned in the bundle ({node.pin[:12]})"
        return DraftChange(node.key, node_content, summary=summary, on_commit=landed)

    keys = list(view.current)
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    changes = [change(node) for node in plan.order if commits[node] is None]
    content.write_drafts(repo, changes, author=author, summary=f"Import {shown}")
    return made


def _publish(repo: ContentRepository, plan: ImportPlan, author: Author, head: CommitId | None) -> PublishRecord:
    """Publish every entity of the bundle. A container publishes its unpinned members' drafts
    with it, so those are not named again: naming each would walk every subtree once per
    container above it (the course's 261 containers took 0.7 s to walk)."""
    versions = plan.view.current.values()
    held = {m.key for v in versions for m in v.content.members or () if m.pin is None}
    targets = [PublishTarget(v.key) for v in versions if v.key not in held]
    try:
        return content.publish(repo, targets, author=author)
    except GitstoreError as exc:
        why = f"the import landed as drafts (draft head {head}) but publishing it was refused: {exc.detail}"
        raise type(exc)(why, **exc.extra) from exc


def _report(
    dry_run: bool,
    outcome: Outcome,
    problems: list[Problem],
    warnings: list[Problem],
    head: CommitId | None,
    record: PublishRecord | None = None,
) -> ImportReport:
    return ImportReport(
        dry_run,
        outcome.created,
        outcome.changed,
        outcome.unchanged,
        outcome.pinned_versions,
        problems,
        warnings,
        str(head) if head is not None else None,
        record,
    )


# -- export -----------------------------------------------------------------------------------


def export_bundle(
    repo: ContentRepository,
    *,
    state: str = "draft",
    as_of: datetime | str | None = None,
    media_type: str = TAR_GZ,
    progress: Progress | None = None,
    public: bool = False,
) -> Iterator[bytes]:
    """The entities of a view as a bundle, streamed: `state` "draft" (every current draft) or
    "published" (what is live), now or `as_of` a moment (a time, or a commit of that branch).
    `public`: what is live as a reader without the draft right may see it, as the public git
    copy shows it (gone and redirected entities their notice alone, no key never live by then).

    Checks its arguments, and that every object the bundle needs reads whole, before returning,
    so a caller can answer an error before streaming.

    Raises:
        CorruptObject: stored content is damaged; `entities` names the entities it belongs to.
    """
    if state not in ("draft", "published"):
        raise InvalidInput("state is draft or published", errors=[{"loc": ["state"], "msg": f"unknown {state!r}"}])
    if media_type not in MEDIA_TYPES:
        raise InvalidInput(
            "export as application/gzip, application/zip or application/x-ndjson",
            errors=[{"loc": ["format"], "msg": f"unsupported {media_type!r}"}],
        )
    commit = _view_commit(repo, DRAFT if state == "draft" else MAIN, as_of)
    # The stream is read on whatever thread its consumer runs: it keeps a handle of its own.
    git = repo.storage.new_handle()
    with object_errors():  # the view's own trees: nothing names a single entity then
        root = commit_tree(git, commit) if commit is not None else None
        damaged = unreadable(git, root)
    if damaged:
        shown = ", ".join(damaged[:10]) + (f" and {len(damaged) - 10} more" if len(damaged) > 10 else "")
        raise CorruptObject(
            f"stored content is damaged: {len(damaged)} entities cannot be read whole ({shown}), so nothing "
            "was exported; `gitstore fsck` lists every damaged object",
            entities=damaged,
        )
    if public and state != "published":
        raise InvalidInput("a public export is of what is live", errors=[{"loc": ["state"], "msg": "not published"}])
    live = partial(repo.index.keys_live_by, main_commit=str(commit)) if public and commit is not None else None
    return write_bundle(git, root, media_type, progress, public=live)


def as_of_from_text(text: str) -> datetime | str:
    """What `as_of` means when a person types it: a full commit id, or an RFC 3339 time."""
    if _SHA.fullmatch(text):
        return text
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "as_of is an RFC 3339 time or a full commit id",
            errors=[{"loc": ["as_of"], "msg": "neither a time nor a commit id"}],
        ) from None


def _view_commit(repo: ContentRepository, ref: str, as_of: datetime | str | None) -> CommitId | None:
    """The commit of `ref` that the view is: its tip, the commit named, or the last one made
    at or before a time."""
    git = repo.storage.git
    # Folded: an export of drafts holds every change acknowledged before it was asked for.
    head = folded_draft_head(repo) if ref == DRAFT else read_ref(git, ref)
    if as_of is None or head is None:
        return head
    if isinstance(as_of, str):
        if not _SHA.fullmatch(as_of):
            raise InvalidInput(
                "as_of is a time or a full commit id", errors=[{"loc": ["as_of"], "msg": "not a commit"}]
            )
        oid = commit_id(as_of)
        if not (is_commit(git, oid) and is_ancestor(git, oid, head)):
            raise InvalidInput(f"{as_of} is not a commit of {ref}", errors=[{"loc": ["as_of"], "msg": f"not on {ref}"}])
        return oid
    if ref == MAIN:
        seq = history.publish_seq_as_of(repo, as_of)
        return None if seq is None else commit_id(repo.index.publishes(before=seq + 1, limit=1)[0][1].commit)
    if as_of.tzinfo is None:
        raise InvalidInput(
            "as_of needs a time zone, as RFC 3339 requires", errors=[{"loc": ["as_of"], "msg": "no offset"}]
        )
    for commit in first_parent_commits(git, head):
        if signature_time(commit.author) <= as_of:
            return commit.id
    return None

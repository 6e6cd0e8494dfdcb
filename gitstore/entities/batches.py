"""Batches: several entities' drafts changed in one atomic operation, with `draft` as the
commit point, and the roll-forward that finishes one a crash interrupted."""

from __future__ import annotations

from collections.abc import Sequence

from gitstore.entities.document import (
    Content,
)
from gitstore.entities.draft_branch import dependents_trailers, fold_drafts
from gitstore.entities.model import Author, WriteResult
from gitstore.entities.plan import DraftChange, Made, Planned, commit_change, draft_row, plan_change, tip_of
from gitstore.entities.preconditions import check_precondition_format
from gitstore.entities.reads import entity_view
from gitstore.entities.rules import DraftRules
from gitstore.entities.snapshots import (
    Snapshot,
    load_snapshot,
    newest_batch,
    published_commit,
    remember,
    signature,
)
from gitstore.entities.trailers import format_message, parse_repeated, parse_trailers
from gitstore.entities.work import holding
from gitstore.index.api import ChangeRow, DraftRow
from gitstore.names import validate_key
from gitstore.repository import DRAFT, ContentRepository, draft_ref
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    Signature,
    TreeId,
    after_commit_point,
    commit_id,
    commit_message,
    commit_tree,
    disk_errors,
    ensure_room,
    first_parent_commits,
    in_order,
    is_ancestor,
    read_ref,
    set_ref,
    update_aggregate,
    update_refs,
    write_commit,
)

# Above this many changes, a batch writes its objects as one pack instead of one fsynced file
# each (gitstore.storage.packs): 10,000 entities take ~0.5 s instead of ~20 s.
_PACKED_BATCH = 32


def write_entity_drafts(
    repo: ContentRepository, changes: Sequence[DraftChange], *, rules: DraftRules, author: Author, summary: str
) -> list[WriteResult]:
    """Change the drafts of several entities in one atomic operation: all of them or none,
    with the claims, trailers and warnings of `rules` (not their checks: see
    gitstore.entities.rules).

    The commit point is `refs/heads/draft`: one commit there lists every entity commit of the
    batch (`Gitstore-Batch: key sha`); the entity refs and the index follow, and are rolled
    forward from it after a crash (`roll_forward_drafts`). Readers trust that list first, so no
    one sees half a batch. Changes that leave an entity as it was are left out. Call it while
    holding the drafts lock if the changes were decided from other entities' drafts.

    Changes apply in order. A key may come more than once: each time is a new version on top of
    the last (an import brings the older versions its containers pin before the current one).
    Results follow `changes`, each the entity's draft after the whole batch.
    """
    for c in changes:
        validate_key(c.key)
        check_precondition_format(c.expected)
    with (
        holding(repo, "drafts", roll_forward_drafts),
        disk_errors(),
        repo.storage.buffered_objects(enabled=len(changes) > _PACKED_BATCH) as flush,
    ):
        fold_drafts(repo)  # the batch's commit on `draft` goes on top of every change before it
        git = repo.storage.git
        sig = signature(author)
        tips: dict[str, CommitId | None] = {}  # each branch as the batch leaves it so far
        existed: dict[str, bool] = {}
        plans: dict[str, Planned] = {}  # each entity's latest plan
        made: dict[str, list[Made]] = {}

        def resolve(key: str) -> CommitId | None:
            # A rule resolving a key (a manifest's members) sees what this batch makes it.
            return tips.get(key) or tip_of(repo, key)

        def apply(c: DraftChange) -> None:
            seen = c.key in tips
            tip = tips[c.key] if seen else read_ref(git, draft_ref(c.key))
            p = plan_change(git, c.key, tip, c.change, None if seen else c.expected)
            existed.setdefault(c.key, p.current is not None)
            plans[c.key] = p
            if not p.is_noop:
                one = commit_change(repo, p, sig, c.action, c.summary, c.extra_trailers, rules=rules, resolve=resolve)
                made.setdefault(c.key, []).append(one)
                tip = one.commit
            tips[c.key] = tip
            if c.on_commit is not None and tip is not None:
                c.on_commit(tip)

        def unchanged(key: str) -> WriteResult:
            current = plans[key].current  # a no-op: the tip it planned against, already read
            assert current is not None
            return WriteResult(entity_view(git, current, "draft", tips[key], published_commit(repo, key)), False, False)

        for c in changes:
            apply(c)
        if not made:
            return [unchanged(c.key) for c in changes]
        for holder, why in rules.check_claims(repo, list(plans.values())).items():
            apply(DraftChange(holder, tombstone, action="delete", summary=why))
        final = {key: versions[-1] for key, versions in made.items()}
        listed = [("Batch", f"{key} {one.commit}") for key, one in final.items()]
        trees = {key: None if plans[key].deleted else plans[key].tree for key in final}
        # Its events' dependents, as the index will know them once the batch is recorded.
        with repo.index.as_if_drafted([one.row for one in final.values()]):
            described = dependents_trailers(repo, list(final))
        head, batch = aggregate_commit(git, trees, sig, format_message(summary, listed) + described)
        flush()  # every object of the batch is on disk before anything names it
        ensure_room(repo.path)
        set_ref(git, DRAFT, expected=head, new=batch)  # the commit point
        with after_commit_point(f"the batch {summary!r}"):
            update_refs(git, {draft_ref(key): one.commit for key, one in final.items()})
            logged = [one.logged for versions in made.values() for one in versions]
            repo.index.record_drafts([one.row for one in final.values()], logged, draft_head=str(batch))
        for one in final.values():
            remember(one.snapshot)
        warnings = rules.warnings(repo, [plans[key] for key in final])
        results = {
            key: WriteResult(
                entity_view(git, one.snapshot, "draft", one.commit, published_commit(repo, key)),
                created=not existed[key],
                changed=True,
                warnings=warnings.get(key, ()),
            )
            for key, one in final.items()
        }
        return [results.get(c.key) or unchanged(c.key) for c in changes]


def roll_forward_drafts(repo: ContentRepository) -> bool:
    """Finish a batch whose commit on `draft` landed but whose entity refs or index rows did
    not, or a fold whose index rows did not (a crash between the two). Idempotent; True if it
    did work."""
    git = repo.storage.git
    head = read_ref(git, DRAFT)
    if head is None or repo.index.records_draft_head(str(head)):
        return False
    with in_order(repo.storage, "drafts"), disk_errors():
        listed = {k: commit_id(sha) for k, sha in newest_batch(repo, head).items()}
        moves = {}
        for key, commit in listed.items():
            ref = read_ref(git, draft_ref(key))
            if ref is None or (ref != commit and is_ancestor(git, ref, commit)):
                moves[draft_ref(key)] = commit
        update_refs(git, moves)
        # The index still names each entity's commit before the batch; a batch may have made
        # more than one version of an entity, and each belongs in the activity log.
        before = repo.index.draft_commits()
        rows, logged = [], []
        for key, commit in listed.items():
            rows.append(index_rows(git, key, commit))
            logged += changes_back_to(git, key, commit, stop_at=before.get(key))
        repo.index.record_drafts(rows, logged, draft_head=str(head))
        folded = [tuple(entry.split(" ", 1)) for entry in parse_repeated(commit_message(git, head), "Folded")]
        if folded:
            repo.index.record_fold(str(head), folded)  # type: ignore[arg-type]
    return bool(listed) or bool(folded)


def index_rows(git: GitHandle, key: str, commit: CommitId) -> DraftRow:
    """What the index records for draft commit `commit` of `key`."""
    snap = load_snapshot(git, commit)
    return draft_row(key, snap.document, commit, snap.tree, snap.deleted, snap.version)


def changes_back_to(git: GitHandle, key: str, tip: CommitId, *, stop_at: str | None) -> list[ChangeRow]:
    """The activity log's rows for `key`'s commits from `tip` back to `stop_at` (exclusive;
    None: the first), newest first. Read from commits alone, never their files."""
    changes = []
    for commit in first_parent_commits(git, tip):
        if str(commit.id) == stop_at:
            break
        trailers = parse_trailers(commit.message)
        version = int(trailers.get("Version", "0"))
        author = commit.author
        changes.append(
            ChangeRow(key, version, str(commit.id), trailers.get("Action", ""), author.name, author.email, author.time)
        )
    return changes


def tombstone(current: Snapshot | None) -> tuple[Content, bool]:
    assert current is not None
    return current.document, True


def aggregate_commit(
    git: GitHandle,
    trees: dict[str, TreeId | None],
    sig: Signature,
    message: str,
) -> tuple[CommitId | None, CommitId]:
    """Write (but do not yet point `draft` at) the aggregate commit for one change or batch."""
    head = read_ref(git, DRAFT)
    root = commit_tree(git, head) if head is not None else None
    new_root = update_aggregate(git, root, trees)
    return head, write_commit(git, sig, message, new_root, [head] if head else [])

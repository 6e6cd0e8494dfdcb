"""From a bundle's versions to one import: pins resolved, every rule checked, the order to
write in, and what a dry run says would change.

An import writes a node per version: each entity's own content, and each pinned version that
is neither a commit here nor that own content (gitstore.bundles.pins). A pinned version goes
on the member's branch before the member's own content, and every version goes after what it
pins and the members it holds, so each pin names a commit that exists and every container's
`Initial` list names its members' new commits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from gitstore.bundles.checks import (
    View,
    check_cycles,
    check_links_of,
    check_members,
    check_uniqueness,
    dangling_links,
)
from gitstore.bundles.format import Problem, Version, fingerprint
from gitstore.bundles.pins import Fingerprints, Node, Target, resolve_pin
from gitstore.entities.api import Content, Member, Snapshot, document_to_files, load_snapshot
from gitstore.repository import ContentRepository
from gitstore.storage.api import commit_id, tree_id

__all__ = ["ImportPlan", "Outcome", "existing", "outcome", "plan_import", "resolved"]


@dataclass(frozen=True)
class ImportPlan:
    view: View
    problems: list[Problem]
    warnings: list[Problem]  # true but allowed: links to entities that are nowhere
    order: list[Node]  # what to write, each after what it depends on
    restore: dict[str, Snapshot]  # entities outside the bundle that get a pinned version: their draft, to put back


@dataclass(frozen=True)
class Outcome:
    """What an import did, or a dry run would do, to the bundle's entities."""

    created: list[str]  # had no draft (never, or deleted)
    changed: list[str]
    unchanged: list[str]
    pinned_versions: int  # older versions added to members' branches so that pins keep their content


def plan_import(repo: ContentRepository, versions: list[Version]) -> ImportPlan:
    """Resolve, check and order a bundle's versions against the repository's drafts. Call it
    under the drafts lock when the plan is to be written."""
    problems: list[Problem] = []
    current: dict[str, Version] = {}
    carried: dict[tuple[str, str], Version] = {}
    for version in versions:
        slot: dict = current if version.pin is None else carried  # type: ignore[type-arg]
        name = version.key if version.pin is None else (version.key, version.pin)
        if name in slot:
            problems.append(Problem(version.origin, version.key, ("key",), "this version is in the bundle twice"))
        else:
            slot[name] = version
    named = {m.key for v in versions for m in v.content.members or ()} | {k for k, _ in carried} | set(current)
    states = repo.index.states(sorted(named))
    drafts = repo.index.summaries(sorted(named), "draft")
    pins = _resolve_pins(repo, [*current.values(), *carried.values()], current, carried, states, problems)
    view = View(repo, current, carried, pins, states, drafts)
    own = list(current.values())
    for check in (check_links_of, check_members, check_uniqueness):
        problems += check(view, own)
    problems += check_cycles(view, [*own, *carried.values()])
    order, restore = _write_order(view, problems)
    return ImportPlan(view, problems, list(dangling_links(view, own)), order, restore)


def _resolve_pins(
    repo: ContentRepository,
    versions: list[Version],
    current: Mapping[str, Version],
    carried: Mapping[tuple[str, str], Version],
    states: Mapping,  # type: ignore[type-arg]
    problems: list[Problem],
) -> dict[tuple[str, str], Target]:
    git = repo.storage.git
    fingerprints = Fingerprints(git)
    own: dict[str, str] = {}
    resolved_pins: dict[tuple[str, str], Target] = {}
    unresolved: set[tuple[str, str]] = set()
    for version in versions:
        for position, member in enumerate(version.content.members or ()):
            if member.pin is None:
                continue
            name = (member.key, member.pin)
            if name not in resolved_pins and name not in unresolved:
                state = states.get(member.key)
                tip = commit_id(state.draft_commit) if state is not None else None
                mine = current.get(member.key)
                if mine is not None and member.key not in own:
                    own[member.key] = fingerprint(mine.key, mine.content)
                target = resolve_pin(git, fingerprints, member, tip, own.get(member.key), carried)
                if target is None:
                    unresolved.add(name)
                else:
                    resolved_pins[name] = target
            if name in unresolved:
                problems.append(
                    Problem(
                        version.origin,
                        version.key,
                        ("members", position, "pin"),
                        f"{member.pin} names no version of {member.key!r}: not a commit of it here, nor the "
                        "fingerprint of a version this bundle carries",
                    )
                )
    return resolved_pins


def _write_order(view: View, problems: list[Problem]) -> tuple[list[Node], dict[str, Snapshot]]:
    """Every node to write, dependencies first, and the drafts to put back after pinned
    versions of entities the bundle does not carry themselves."""
    needed, restore = _needed(view)
    order, stuck = _dependencies_first(view, needed)
    if stuck and not problems:
        problems.append(
            Problem("", stuck[0], ("members",), f"pins and members go round in a circle: {', '.join(stuck)}")
        )
    return order, restore


def _needed(view: View) -> tuple[list[Node], dict[str, Snapshot]]:
    """The bundle's nodes, the pinned versions they bring, and for each entity written at a
    pinned version only, its draft to put back on top (the snapshot to restore)."""
    needed: list[Node] = [Node(key) for key in view.current]
    seen = set(needed)
    for node in needed:  # grows while it is walked: pinned versions bring what they pin
        for target in _pinned(view, node):
            if isinstance(target, Node) and target.pin is not None and target not in seen:
                seen.add(target)
                needed.append(target)
    restore: dict[str, Snapshot] = {}
    for node in list(needed):
        state = view.states.get(node.key)
        if node.pin is not None and node.key not in view.current and state is not None and node.key not in restore:
            git = view.repo.storage.git
            restore[node.key] = load_snapshot(git, commit_id(state.draft_commit))
            needed.append(Node(node.key))
    return needed, restore


def _dependencies_first(view: View, needed: list[Node]) -> tuple[list[Node], list[str]]:
    """`needed` in an order that writes every node after what it pins, holds, or (for a draft)
    the older versions of its own key; and the keys of the nodes a circle leaves out."""
    older: dict[str, list[Node]] = {}
    for node in needed:
        if node.pin is not None:
            older.setdefault(node.key, []).append(node)
    after: dict[Node, list[Node]] = {node: [] for node in needed}
    waiting: dict[Node, int] = {}
    for node in needed:
        before = {t for t in _pinned(view, node) if isinstance(t, Node)} | set(_held(view, node))
        if node.pin is None:
            before.update(older.get(node.key, ()))
        before = {dependency for dependency in before if dependency in after and dependency != node}
        waiting[node] = len(before)
        for dependency in before:
            after[dependency].append(node)
    ready = deque(node for node in needed if waiting[node] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for follower in after[node]:
            waiting[follower] -= 1
            if waiting[follower] == 0:
                ready.append(follower)
    return order, sorted({n.key for n in needed if waiting[n] > 0})


def _pinned(view: View, node: Node) -> list[Target]:
    version = _version(view, node)
    members = version.content.members if version is not None else None
    return [view.pins[(m.key, m.pin)] for m in members or () if m.pin is not None and (m.key, m.pin) in view.pins]


def _held(view: View, node: Node) -> list[Node]:
    """Unpinned members that arrive with the bundle: a container's `Initial` list names their new commits."""
    version = _version(view, node)
    members = version.content.members if version is not None else None
    return [Node(m.key) for m in members or () if m.pin is None and m.key in view.current]


def _version(view: View, node: Node) -> Version | None:
    return view.carried[(node.key, node.pin)] if node.pin is not None else view.current.get(node.key)


def resolved(view: View, node: Node, commits: Mapping[Node, str | None]) -> Content | None:
    """A node's content with each pin naming a commit here (None if one is not known yet)."""
    version = _version(view, node)
    assert version is not None
    content = version.content
    if content.members is None:
        return content
    members = []
    for member in content.members:
        if member.pin is not None:
            target = view.pins[(member.key, member.pin)]
            commit = target if isinstance(target, str) else commits.get(target)
            if commit is None:
                return None
            member = Member(member.key, commit)
        members.append(member)
    return content._replace(members=tuple(members))


def existing(plan: ImportPlan) -> dict[Node, str | None]:
    """For each node, in order, the commit here that already holds exactly its content (the
    draft it would land on, compared by tree id), or None if the import must write it. A version
    whose pins name commits the import makes is new by definition. This is what a dry run
    reports, and what a real import leaves out of its batch: re-importing what is there costs
    a read, not a write."""
    view = plan.view
    tips: dict[str, tuple[str | None, str | None]] = {
        key: (state.draft_commit, state.draft_tree) for key, state in view.states.items()
    }
    commits: dict[Node, str | None] = {}
    for node in plan.order:
        commit, tree = tips.get(node.key, (None, None))
        files: dict[str, bytes] | None
        if node.pin is None and node.key in plan.restore:
            snap = plan.restore[node.key]
            files = document_to_files(node.key, snap.document, deleted=snap.deleted)
        else:
            content = resolved(view, node, commits)
            files = document_to_files(node.key, content) if content is not None else None
        ours = str(tree_id(files)) if files is not None else None
        if ours is not None and ours == tree:
            commits[node] = commit
        else:
            commits[node] = None
            tips[node.key] = (None, ours)
    return commits


def outcome(view: View, new: set[Node]) -> Outcome:
    """What an import did, or would do, to the bundle's entities, from the nodes it writes."""
    created, changed, unchanged = [], [], []
    for key in view.current:
        state = view.states.get(key)
        if Node(key) not in new:
            unchanged.append(key)
        elif state is None or state.draft_deleted:
            created.append(key)
        else:
            changed.append(key)
    return Outcome(sorted(created), sorted(changed), sorted(unchanged), sum(1 for node in new if node.pin is not None))

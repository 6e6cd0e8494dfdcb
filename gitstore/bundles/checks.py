"""The rules an import must pass, checked against the bundle and the repository together: an
entity may link to, hold or pin one that arrives in the same bundle. The rules a single write
checks (manifests, paths, translations, link types) are checked here for the whole bundle at
once, and every broken one is reported, not just the first. One is softened: a link to an
entity that is nowhere is a warning, since an exported view leaves out deleted and
unpublished targets that its links still name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from gitstore.bundles.format import Problem, Version
from gitstore.bundles.pins import Node, Target
from gitstore.containers.api import ContainerType, allows, container_type
from gitstore.entities.api import Content, document_id, load_snapshot, placeholder_kind
from gitstore.index.api import EntityState, Summary
from gitstore.links.api import reverse_names
from gitstore.repository import ContentRepository
from gitstore.storage.api import commit_id

__all__ = ["View", "check_cycles", "check_links_of", "check_members", "check_uniqueness", "dangling_links"]


@dataclass(frozen=True)
class Draft:
    """A draft of the repository that the bundle does not replace."""

    key: str


@dataclass
class View:
    """The drafts as they would be after the import: the bundle's versions over the repository's."""

    repo: ContentRepository
    current: Mapping[str, Version]  # each entity's own content in the bundle
    carried: Mapping[tuple[str, str], Version]  # pinned versions, by (key, fingerprint)
    pins: Mapping[tuple[str, str], Target]  # what each of the bundle's pins resolves to
    states: Mapping[str, EntityState]  # the index's rows for every key the bundle names
    drafts: Mapping[str, Summary]  # ... those with a draft that is not deleted
    _types: dict[str, ContainerType] = field(default_factory=dict)

    def container_type(self, name: str) -> ContainerType:
        if name not in self._types:
            self._types[name] = container_type(self.repo, name)
        return self._types[name]

    def content(self, node: Node | Draft | str) -> Content | None:
        """A node's content: a bundle version, a commit here, or a draft here (None if deleted)."""
        if isinstance(node, Node):
            if node.pin is not None:
                return self.carried[(node.key, node.pin)].content
            own = self.current.get(node.key)
            return own.content if own is not None else self.content(Draft(node.key))
        git = self.repo.storage.git
        if isinstance(node, Draft):
            state = self.states.get(node.key)
            if state is None or state.draft_deleted:
                return None
            return load_snapshot(git, commit_id(state.draft_commit)).document
        return load_snapshot(git, commit_id(node)).document

    def members_of(self, node: Node | Draft | str) -> Iterator[Node | Draft | str]:
        """What a node's manifest points at, in the view after the import."""
        content = self.content(node)
        for member in (content.members if content is not None else None) or ():
            if member.pin is None:
                yield Node(member.key) if member.key in self.current else Draft(member.key)
            elif isinstance(node, Node):
                target = self.pins.get((member.key, member.pin))
                if target is not None:
                    yield target
            else:
                yield member.pin  # a commit of this repository pins a commit of this repository


def check_links_of(view: View, versions: list[Version]) -> Iterator[Problem]:
    """No link type is a name that expansion computes (a reverse such as `children`)."""
    computed = {reverse: name for name, reverse in reverse_names(view.repo).items()}
    for version in versions:
        for link_type in sorted(version.content.links.keys() & computed.keys()):
            why = f"{link_type!r} is computed from {computed[link_type]!r} links; link the other way"
            yield Problem(version.origin, version.key, ("links", link_type), why)


def dangling_links(view: View, versions: list[Version]) -> Iterator[Problem]:
    """Links to entities neither in the bundle nor here. Allowed, as a link to a deleted entity
    is (a view exports no deleted or unpublished target, yet its links name them), but worth
    a warning: a mistyped key looks the same."""
    targets = {t for v in versions for ts in v.content.links.values() for t in ts if t not in view.current}
    known = view.repo.index.states(sorted(targets))
    for version in versions:
        for link_type, keys in sorted(version.content.links.items()):
            for position, target in enumerate(keys):
                if target != version.key and target not in view.current and target not in known:
                    why = f"{target!r} is neither in the bundle nor here; expansion leaves it out until it is"
                    yield Problem(version.origin, version.key, ("links", link_type, position), why)


def check_members(view: View, versions: list[Version]) -> Iterator[Problem]:
    """Each member exists in the view and is not deleted, and the container's type allows it.
    (Pins that name nothing are reported where they are resolved.)"""
    for version in versions:
        content = version.content
        if content.members is None:
            continue
        kind = view.container_type(content.type)
        if not kind.holds_members:
            yield Problem(version.origin, version.key, ("members",), f"type {content.type!r} holds no members")
            continue
        for position, member in enumerate(content.members):
            loc: tuple[str | int, ...] = ("members", position)
            if member.key == version.key:
                yield Problem(version.origin, version.key, loc, f"{version.key!r} cannot contain itself")
                continue
            if member.pin is not None:
                target = view.pins.get((member.key, member.pin))
                found = view.content(target) if target is not None else None
            elif member.key in view.current:
                found = view.current[member.key].content
            else:
                summary = view.drafts.get(member.key)
                if summary is None:
                    state = view.states.get(member.key)
                    why = "is deleted in draft" if state is not None else "is neither in the bundle nor here"
                    yield Problem(version.origin, version.key, (*loc, "key"), f"{member.key!r} {why}")
                    continue
                found = None
                if not allows(kind, summary.type):
                    yield _not_allowed(version, loc, kind, member.key, summary.type)
                continue
            if found is not None and not allows(kind, found.type):
                yield _not_allowed(version, loc, kind, member.key, found.type)


def _not_allowed(version: Version, loc: tuple[str | int, ...], kind: ContainerType, key: str, type_: str) -> Problem:
    allowed = ", ".join(kind.allowed_member_types or ())
    return Problem(version.origin, version.key, loc, f"a {kind.name} holds {allowed}; {key!r} is a {type_}")


def check_uniqueness(view: View, versions: list[Version]) -> Iterator[Problem]:
    """Among the drafts after the import, a base_path has one holder (a placeholder holding it
    here gives it up, as on any write) and a document one translation per locale."""
    index = view.repo.index
    paths: dict[str, str] = {}
    documents: dict[tuple[str, str], str] = {}
    for version in versions:
        key, doc = version.key, version.content
        path = doc.base_path
        if path is not None:
            in_bundle = paths.setdefault(path, key)
            if in_bundle != key:
                yield Problem(version.origin, key, ("base_path",), f"{path!r} is also the base_path of {in_bundle!r}")
            in_drafts = index.draft_holder(path, other_than=key)
            if in_drafts is not None and in_drafts not in view.current:
                summary = view.drafts.get(in_drafts) or index.summaries([in_drafts], "draft").get(in_drafts)
                if summary is not None and not placeholder_kind(summary.type, summary.unpublishing):
                    yield Problem(
                        version.origin, key, ("base_path",), f"{path!r} is held by the draft of {in_drafts!r}"
                    )
        document = (document_id(key, doc), doc.locale)
        translation = documents.setdefault(document, key)
        if translation != key:
            yield Problem(version.origin, key, ("locale",), f"{translation!r} is the same translation in this bundle")
        translated = index.translation_holder(*document, other_than=key)
        if translated is not None and translated not in view.current:
            yield Problem(
                version.origin,
                key,
                ("locale",),
                f"{translated!r} is already the {doc.locale!r} translation of {document[0]!r}",
            )


def check_cycles(view: View, versions: list[Version]) -> Iterator[Problem]:
    """No container contains itself at any depth, in draft or through pins, once imported."""
    done: set[Node | Draft | str] = set()
    reported: set[frozenset[Node | Draft | str]] = set()
    for version in versions:
        start = Node(version.key, version.pin)
        if start in done:
            continue
        # Depth first without recursion: a crafted bundle may nest deeper than Python's stack.
        path: list[Node | Draft | str] = [start]
        pending = [view.members_of(start)]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                pending.pop()
                done.add(path.pop())
            elif child in path:
                cycle = path[path.index(child) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    yield _cycle(view, cycle, version)
            elif child not in done:
                path.append(child)
                pending.append(view.members_of(child))


def _cycle(view: View, cycle: list[Node | Draft | str], found_from: Version) -> Problem:
    """The cycle, reported at the first version of the bundle on it."""
    names = [node.key if isinstance(node, (Node, Draft)) else _key_of(view, node) for node in cycle]
    owner = found_from
    for node in cycle:
        if isinstance(node, Node) and (node.key in view.current or node.pin is not None):
            owner = view.carried[(node.key, node.pin)] if node.pin is not None else view.current[node.key]
            break
    return Problem(owner.origin, owner.key, ("members",), "a cycle: " + " > ".join([*names, names[0]]))


def _key_of(view: View, commit: str) -> str:
    return load_snapshot(view.repo.storage.git, commit_id(commit)).key

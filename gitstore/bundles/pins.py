"""Pins across repositories: what a repository version's fingerprint is (export), and which
version of the importing repository, or of the bundle, each of a bundle's pins names (import).

A bundle's pin names a fingerprint (gitstore.bundles.format). On import it resolves, in order:

1. to the commit it names, if it is a commit of the member's branch here (a bundle made with
   `git archive draft` from this very repository);
2. to the newest commit of the member's branch here with that fingerprint (importing a bundle
   exported from here, or one imported before: no new version is made);
3. to the commit the import makes of the member's own content in the bundle, if that is the
   version pinned;
4. to a commit the import makes of the pinned version the bundle carries under pins/, written
   on the member's branch before the member's own content, so that it is an older version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from gitstore.bundles.format import Version
from gitstore.entities.api import MEMBERS_FILE, Member, members_from_bytes, members_to_bytes, pin_resolver
from gitstore.storage.api import (
    CommitId,
    GitHandle,
    TreeId,
    commit_id,
    commit_tree,
    entry_id,
    first_parent_history,
    is_ancestor,
    is_commit,
    read_files,
    tree_id,
)

__all__ = ["Fingerprints", "Node", "Target", "resolve_pin"]


class Fingerprints:
    """Fingerprints of one repository's versions, each computed once."""

    def __init__(self, git: GitHandle) -> None:
        self._git = git
        self.pinned = pin_resolver(git)
        self._known: dict[TreeId, str] = {}  # by tree id: a tree and the commits it pins never change

    def of_commit(self, commit: CommitId) -> str:
        return self.of_tree(commit_tree(self._git, commit))

    def of_tree(self, tree: TreeId) -> str:
        found = self._known.get(tree)
        if found is None:
            # Without a manifest the bundle holds the very files, so the tree id is the answer.
            has_manifest = entry_id(self._git, tree, MEMBERS_FILE) is not None
            found = str(tree_id(self.bundle_files(tree))) if has_manifest else str(tree)
            self._known[tree] = found
        return found

    def bundle_files(self, tree: TreeId) -> dict[str, bytes]:
        """A version's files as a bundle holds them: each pin as the pinned version's fingerprint."""
        files = read_files(self._git, tree)
        manifest = files.get(MEMBERS_FILE)
        if manifest is not None:
            members = members_from_bytes(manifest)
            files[MEMBERS_FILE] = members_to_bytes(tuple(self.portable(m) for m in members))
        return files

    def portable(self, member: Member) -> Member:
        return member if member.pin is None else Member(member.key, self.of_commit(self.pinned(member.pin)))


class Node(NamedTuple):
    """A version an import writes: `key`'s own content in the bundle (`pin` None), or the
    pinned version of `key` the bundle carries under that fingerprint. (A tuple: planning
    hashes these a few hundred thousand times for a large bundle.)"""

    key: str
    pin: str | None = None


#: What a pin resolves to: a commit that exists here (its id), or a version the import writes.
Target = str | Node


def resolve_pin(
    git: GitHandle,
    fingerprints: Fingerprints,
    member: Member,
    tip: CommitId | None,
    own: str | None,
    carried: Mapping[tuple[str, str], Version],
) -> Target | None:
    """What `member`'s pin names (see the module docstring), or None if nothing does. `tip` is
    the member's draft tip here, `own` the fingerprint of its own content in the bundle."""
    assert member.pin is not None
    if tip is not None:
        named = commit_id(member.pin)
        if is_commit(git, named) and is_ancestor(git, named, tip):
            return member.pin
        for oid in first_parent_history(git, tip):
            if fingerprints.of_commit(oid) == member.pin:
                return str(oid)
    if own == member.pin:
        return Node(member.key)
    if (member.key, member.pin) in carried:
        return Node(member.key, member.pin)
    return None

"""What layers above add to every publish, as plugins: publishing runs what it is given.

gitstore.content runs a publish as

    before    each part remembers what it needs of the live site as it is (under the locks)
    expand    each part adds what the targets bring along, in registration order
    describe  each part says what the publish commit records of each entity it moves
    after     each part completes the record, given what it remembered

A containers part brings members along and the containers a delete leaves; a links part fills
`PublishRecord.dependents`. The set a repository's publishes run is built once, explicitly,
by gitstore.content.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitstore.entities.api import Registry
from gitstore.index.api import PublishedRow
from gitstore.publishing.publish import Describe, PublishRecord, PublishTarget
from gitstore.repository import ContentRepository

__all__ = ["PublishPart", "PublishParts"]


class PublishPart:
    """One layer's share of every publish. Override what the part needs: the defaults add
    nothing."""

    def before(self, repo: ContentRepository, keys: Sequence[str]) -> object:
        """What `after` will need of the live site before the publish moves it; `keys` are the
        entities asked for (none for an unpublish)."""
        return None

    def expand(self, repo: ContentRepository, targets: list[PublishTarget]) -> list[PublishTarget]:
        """The targets, with what they bring along. Runs holding the publish lock, and the
        drafts lock unless a round of publishes is planned ahead of it (gitstore.publishing.rounds):
        then it must read the drafts only through the targets' tips, or make the publish go
        alone (one that brings members along holds them), and the round is planned again under
        the drafts lock if it read more."""
        return targets

    def describe(self, repo: ContentRepository, rows: list[PublishedRow]) -> dict[str, list[str]]:
        """key -> what the publish commit records of it (`Gitstore-Dependents`), given the rows
        the index will hold once it is live."""
        return {}

    def after(self, repo: ContentRepository, record: PublishRecord, remembered: object) -> PublishRecord:
        """The record, completed."""
        return record


class PublishParts(Registry[PublishPart]):
    """The parts a publish runs, in the order they were registered."""

    def before(self, repo: ContentRepository, keys: Sequence[str]) -> list[object]:
        return [part.before(repo, keys) for part in self._plugins]

    def expand(self, repo: ContentRepository, targets: Sequence[PublishTarget]) -> list[PublishTarget]:
        expanded = list(targets)
        for part in self._plugins:
            expanded = part.expand(repo, expanded)
        return expanded

    def describer(self, repo: ContentRepository) -> Describe:
        def describe(rows: list[PublishedRow]) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for part in self._plugins:
                for key, said in part.describe(repo, rows).items():
                    found[key] = found.get(key, []) + said
            return found

        return describe

    def after(self, repo: ContentRepository, record: PublishRecord, remembered: list[object]) -> PublishRecord:
        for part, kept in zip(self._plugins, remembered, strict=True):
            record = part.after(repo, record, kept)
        return record

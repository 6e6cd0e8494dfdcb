"""The rules of the draft write path, as plugins: the layers above say what they check, what
they claim and what they record, and this layer runs what it is given, knowing none of it.

A write is planned (gitstore.entities.plan), then, under the drafts lock, every rule is asked
in the order it was registered:

    reads_others   whether checking the change reads other entities' drafts; such a change
                   goes alone in its group-commit round (gitstore.entities.rounds)
    check          refuse a single change (never a delete) by raising
    claims         the slots a draft holds (a base_path, say); two changes of one round never
                   share one, and a change that takes a slot its draft did not hold has
                   `check_claims` run on it: an edit that keeps its slots costs nothing
    check_claims   refuse a change whose claims clash, or name entities it displaces: each is
                   deleted in the same batch, with the summary given
    trailers       lines the change's commit records (`Gitstore-<name>: <value>`)
    warnings       what the write's answer should say of each key (allowed, but worth knowing)

A batch (gitstore.entities.batches) runs `check_claims` over all of its changes, `trailers` and
`warnings`, but not `check`: its caller has checked the batch as a whole, whose changes may
name one another.

The set of rules a repository's writes run is built once, explicitly, by gitstore.content;
every write function of this layer takes it as `rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from gitstore.entities.document import Content
from gitstore.entities.plan import Planned
from gitstore.repository import ContentRepository
from gitstore.storage.api import CommitId

__all__ = ["DraftRule", "DraftRules", "Registry", "Resolve"]

Plugin = TypeVar("Plugin")

#: key -> the commit it resolves to for this write (a batch's own commits first), or None.
Resolve = Callable[[str], CommitId | None]


class DraftRule:
    """One layer's rule of the draft write path. Override what the rule needs: the defaults
    check nothing, claim nothing and record nothing."""

    def reads_others(self, planned: Planned) -> bool:
        """Whether `check` reads other entities' drafts for this (non-delete) change."""
        return False

    def check(self, repo: ContentRepository, planned: Planned) -> None:
        """Raise to refuse the change. Runs under the drafts lock, so what it reads of other
        entities cannot change before the write lands."""

    def claims(self, key: str, doc: Content) -> frozenset[str]:
        """The slots a draft of `key` holding `doc` takes; names unique among every rule's."""
        return frozenset()

    def check_claims(self, repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, str]:
        """For changes that take slots their drafts do not hold: raise if one is taken, or
        return the entities to delete in the same batch (key -> its delete's summary)."""
        return {}

    def trailers(self, repo: ContentRepository, planned: Planned, resolve: Resolve) -> list[tuple[str, str]]:
        """Trailers the change's commit records, after the layer's own."""
        return []

    def warnings(self, repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, tuple[str, ...]]:
        """key -> what its write's answer warns of."""
        return {}


class Registry(Generic[Plugin]):
    """Plugins in the order they were registered; each registered once."""

    def __init__(self, *plugins: Plugin) -> None:
        self._plugins: list[Plugin] = []
        for plugin in plugins:
            self.register(plugin)

    def register(self, plugin: Plugin) -> None:
        """Add `plugin` to every operation run with this registry."""
        if plugin in self._plugins:
            raise ValueError(f"{plugin!r} is registered already")
        self._plugins.append(plugin)

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self._plugins)


class DraftRules(Registry[DraftRule]):
    """The rules a write runs, in the order they were registered. Each hook calls only the
    rules that override it: a write pays nothing for what a rule leaves at its default."""

    def __init__(self, *rules: DraftRule) -> None:
        self._overriding: dict[str, list[DraftRule]] = {}
        super().__init__(*rules)

    def register(self, plugin: DraftRule) -> None:
        super().register(plugin)
        self._overriding = {
            hook: [rule for rule in self if getattr(type(rule), hook) is not getattr(DraftRule, hook)]
            for hook in ("reads_others", "check", "claims", "check_claims", "trailers", "warnings")
        }

    def reads_others(self, planned: Planned) -> bool:
        return not planned.deleted and any(rule.reads_others(planned) for rule in self._overriding["reads_others"])

    def check(self, repo: ContentRepository, planned: Planned) -> None:
        if planned.deleted:
            return
        for rule in self._overriding["check"]:
            rule.check(repo, planned)

    def claims_of(self, planned: Planned) -> set[str]:
        """What a change in a round must not share with another: its key, and the slots it
        leaves or takes (checked against the index, which a round updates only at its end)."""
        claims = {f"key:{planned.key}"}
        current = planned.current
        if current is not None and not current.deleted:
            claims |= self._slots(planned.key, current.document)
        if not planned.deleted:
            claims |= self._slots(planned.key, planned.doc)
        return claims

    def takes_claims(self, planned: Planned) -> bool:
        """Whether the change takes a slot its entity's draft does not hold already. An edit
        that keeps them (most edits) has nothing to check: the draft passed the same check
        when it took them, and no other draft can have taken them since."""
        current = planned.current
        if planned.deleted:
            return False
        if current is None or current.deleted:
            return True
        return self._slots(planned.key, planned.doc) != self._slots(planned.key, current.document)

    def check_claims(self, repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, str]:
        displaced: dict[str, str] = {}
        for rule in self._overriding["check_claims"]:
            displaced.update(rule.check_claims(repo, plans))
        return displaced

    def trailers(self, repo: ContentRepository, planned: Planned, resolve: Resolve) -> list[tuple[str, str]]:
        return [line for rule in self._overriding["trailers"] for line in rule.trailers(repo, planned, resolve)]

    def warnings(self, repo: ContentRepository, plans: Sequence[Planned]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for rule in self._overriding["warnings"]:
            for key, said in rule.warnings(repo, plans).items():
                found[key] = found.get(key, ()) + said
        return found

    def _slots(self, key: str, doc: Content) -> frozenset[str]:
        slots: frozenset[str] = frozenset()
        for rule in self._overriding["claims"]:
            slots |= rule.claims(key, doc)
        return slots

"""What callers without the preview right (anonymous readers, `read` tokens) are shown: the live
site, as if no draft had ever existed (issue 18).

The library answers live views with what an editor needs too: whether a draft differs, the
draft head, who wrote it and at which address, links to pages that were never published, and
why a key has no live version ("never been published" is itself news of a draft). Each route
passes its answer through its caller's `Audience`, which takes those out for readers; for
callers with preview it changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from api.auth import may_preview
from api.deps import PrincipalDep, RepoDep
from api.problems import gitstore_error
from api.schemas import AuthorOut, EntityOut, RepoOut
from gitstore import ContentRepository
from gitstore.access.api import Principal
from gitstore.containers.api import TreeNode
from gitstore.entities import api as entities
from gitstore.errors import NotFound, RepositoryNotFound
from gitstore.index.api import Usage

__all__ = ["Audience", "AudienceDep", "audience", "install"]


@dataclass(frozen=True, slots=True)
class Audience:
    """What one caller may be shown of one repository."""

    preview: bool
    public_authors: str  # "name" or "none": what readers see of an author (api.settings)

    def author(self, author: AuthorOut | None) -> AuthorOut | None:
        if self.preview or author is None:
            return author
        return AuthorOut(name=author.name) if self.public_authors == "name" else None

    def entities(self, repo: ContentRepository, items: list[EntityOut]) -> list[EntityOut]:
        if self.preview:
            return items
        # One index query for the page: which of the keys its links and manifests name were
        # ever live. A link to a page that never was tells of a draft: leave it out, as the
        # live view's expansion does.
        named = {
            k for e in items for k in [*(t for ts in e.links.values() for t in ts), *(m.key for m in e.members or [])]
        }
        known = entities.ever_published(repo, sorted(named))
        return [
            item.model_copy(
                update={
                    "has_unpublished_changes": None,
                    "author": self.author(item.author),
                    "links": {kind: kept for kind, ts in item.links.items() if (kept := [t for t in ts if t in known])},
                    "members": None if item.members is None else [m for m in item.members if m.key in known],
                }
            )
            for item in items
        ]

    def entity(self, repo: ContentRepository, item: EntityOut) -> EntityOut:
        return self.entities(repo, [item])[0]

    def repository(self, out: RepoOut) -> RepoOut:
        return out if self.preview else out.model_copy(update={"draft": None})

    def tree(self, node: TreeNode) -> TreeNode:
        if self.preview:
            return node
        # Whether drafts differ from the live tree is itself draft information.
        members = None if node.members is None else [self.tree(m) for m in node.members]
        return replace(node, contains_unpublished_changes=None, members=members)  # type: ignore[arg-type]

    def usages(self, repo: ContentRepository, key: str, usages: list[Usage]) -> list[Usage]:
        """Where `key` is used, for this caller: readers learn only of live manifests, and
        nothing of a key that was never live."""
        if self.preview:
            return usages
        if not self.knows(repo, key):
            raise entities.unknown_entity(repo, key)
        return [u for u in usages if u.view == "live"]

    def knows(self, repo: ContentRepository, key: str) -> bool:
        """Whether this caller may learn that `key` exists: readers only of what was ever live."""
        return self.preview or bool(entities.ever_published(repo, [key]))


def audience(request: Request, principal: Principal, repo: ContentRepository) -> Audience:
    return Audience(may_preview(principal, repo), request.app.state.settings.public_authors)


async def _audience(request: Request, principal: PrincipalDep, repo: RepoDep) -> Audience:
    return audience(request, principal, repo)


AudienceDep = Annotated[Audience, Depends(_audience)]


async def _not_found(request: Request, exc: Exception) -> Response:
    """A reader told why a key has no live version would learn that it has a draft: a key that
    was never live answers exactly what a key that never existed answers."""
    name, key = request.path_params.get("repo"), request.path_params.get("key")
    principal = getattr(request.state, "principal", None)
    if (
        isinstance(name, str)
        and isinstance(key, str)
        and principal is not None
        and not isinstance(exc, RepositoryNotFound)
    ):
        repo = request.app.state.store.opened(name)
        if repo is not None and not audience(request, principal, repo).knows(repo, key):
            exc = entities.unknown_entity(repo, key)
    return await gitstore_error(request, exc)


def install(app: FastAPI) -> None:
    # Starlette picks the handler by the error's MRO: this one for every NotFound.
    app.add_exception_handler(NotFound, _not_found)

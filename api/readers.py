"""What callers without the preview right (anonymous readers, `read` tokens) are shown: the live
site, as if no draft had ever existed (issue 18).

The library answers live views with what an editor needs too: whether a draft differs, the
draft head, who wrote it and at which address, links to pages that were never published, and
why a key has no live version ("never been published" is itself news of a draft). Each route
passes its answer through its caller's `Audience`, which takes those out for readers; for
callers with preview it changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from api.auth import current_principal, may_preview
from api.deps import RepoDep
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
        known = _ever_live(repo, ((e.links, [m.key for m in e.members or []]) for e in items))
        return [
            item.model_copy(
                update={
                    "has_unpublished_changes": None,
                    "author": self.author(item.author),
                    "links": _live_links(item.links, known),
                    "members": None if item.members is None else [m for m in item.members if m.key in known],
                }
            )
            for item in items
        ]

    def entity(self, repo: ContentRepository, item: EntityOut) -> EntityOut:
        return self.entities(repo, [item])[0]

    def documents(self, repo: ContentRepository, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`entities` for answers encoded straight from the library's records (api.answers):
        the same things left out, of the documents EntityOut would have serialised."""
        if self.preview:
            return items
        known = _ever_live(repo, ((d["links"], [m["key"] for m in d["members"] or []]) for d in items))
        shown = []
        for document in items:
            document = dict(document, links=_live_links(document["links"], known))
            del document["has_unpublished_changes"]  # absent, as EntityOut leaves out a None
            if self.public_authors == "name":
                document["author"] = {"name": document["author"]["name"]}
            else:
                del document["author"]
            if document["members"] is not None:
                document["members"] = [m for m in document["members"] if m["key"] in known]
            shown.append(document)
        return shown

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


def _ever_live(repo: ContentRepository, named: Iterable[tuple[dict[str, list[str]], list[str]]]) -> set[str]:
    """Which of the keys that entities' links and manifests name were ever live, in one index
    query for the page. A link to a page that never was tells of a draft: readers are not shown
    it, as the live view's expansion leaves it out."""
    keys = {k for links, members in named for k in [*(t for ts in links.values() for t in ts), *members]}
    return entities.ever_published(repo, sorted(keys)) if keys else set()


def _live_links(links: dict[str, list[str]], known: set[str]) -> dict[str, list[str]]:
    return {kind: kept for kind, ts in links.items() if (kept := [t for t in ts if t in known])}


def audience(request: Request, principal: Principal, repo: ContentRepository) -> Audience:
    return Audience(may_preview(principal, repo), request.app.state.settings.public_authors)


async def _audience(request: Request, repo: RepoDep) -> Audience:
    # The caller is known once the repository is (get_repo asks who it is).
    return audience(request, current_principal(request), repo)


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

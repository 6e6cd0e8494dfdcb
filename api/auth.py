"""Who is asking, and what they may see.

Until scoped tokens land, every request acts as the one principal configured for this server
(GITSTORE_AUTHOR_NAME / GITSTORE_AUTHOR_EMAIL), who may see drafts unless
GITSTORE_ANONYMOUS=read. The seam is here so that
routers never decide visibility themselves: they ask `may_preview`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.problems import HTTPProblem
from gitstore import Author, ContentRepository


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    email: str
    can_preview: bool = True

    @property
    def author(self) -> Author:
        return Author(self.name, self.email)


def current_principal(request: Request) -> Principal:
    settings = request.app.state.settings
    return Principal(settings.author_name, settings.author_email, can_preview=settings.anonymous_preview)


def may_preview(principal: Principal, repo: ContentRepository) -> bool:
    """May this caller see drafts and history of `repo`?"""
    return principal.can_preview


def require_preview(principal: Principal, repo: ContentRepository) -> None:
    if not may_preview(principal, repo):
        raise HTTPProblem(403, "forbidden", "Forbidden", "you may not see drafts of this repository")

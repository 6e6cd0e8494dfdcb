"""Structure pages: a container's resolved tree, and an entity's links and dependents."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.auth import a_draft_view, needs_preview
from api.deps import PrincipalDep, RepoDep
from api.readers import AudienceDep
from api.ui.render import render
from api.ui.route import UIRoute
from gitstore.containers import api as containers
from gitstore.containers.api import View
from gitstore.links import api as links

router = APIRouter(prefix="/ui/repos/{repo}/entities/{key}", route_class=UIRoute, include_in_schema=False)

State = Literal["draft", "published"]


@router.get("/tree")
@needs_preview(when=a_draft_view)
def tree(
    request: Request,
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    audience: AudienceDep,
    state: State = "published",
) -> HTMLResponse:
    root = audience.tree(containers.resolve_tree(repo, key, View(state)))
    return render(request, "tree.html", repo=repo, key=key, root=root, state=state, preview=audience.preview)


@router.get("/links")
@needs_preview(when=a_draft_view)
def links_page(
    request: Request,
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    audience: AudienceDep,
    state: State = "published",
    locale: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    expanded = links.expanded_links(repo, key, state=state, locale=locale or None)
    # As GET .../dependents: what links to a page that was never live is not told to readers.
    dependents = links.dependents(repo, [key], state=state) if audience.knows(repo, key) else []
    return render(
        request,
        "links.html",
        repo=repo,
        key=key,
        expanded=expanded,
        dependents=dependents,
        state=state,
        preview=audience.preview,
    )

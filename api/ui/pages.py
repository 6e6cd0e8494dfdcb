"""Reading pages: repositories, a repository's entities, and one entity (live beside draft,
what publishing would change, its versions, and the actions on it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.auth import (
    a_draft_view_or_draft_filters,
    a_version_or_the_versions,
    may_publish,
    may_write,
    needs_preview,
    visible,
)
from api.deps import PrincipalDep, RepoDep, StoreDep
from api.readers import AudienceDep, audience
from api.schemas import EntityOut
from api.ui.diffs import field_diffs, shown
from api.ui.render import render
from api.ui.route import UIRoute
from gitstore.containers import api as containers
from gitstore.entities import api as entities
from gitstore.entities.api import Entity
from gitstore.errors import EntityNotFound
from gitstore.history import api as history
from gitstore.index.api import ListFilter
from gitstore.publishing.api import serve

router = APIRouter(prefix="/ui", route_class=UIRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=200)]
PAGE = 50
PREVIEW_SHOWN = 4000  # characters of a field drawn on the entity page; compare shows it all


@router.get("")
def repositories(request: Request, store: StoreDep, principal: PrincipalDep) -> HTMLResponse:
    rows = []
    repos = {repo.name: repo for repo in store.repositories()}
    for repo in (repos[name] for name in visible(principal, repos)):  # the others do not exist for them
        shown = audience(request, principal, repo)
        counts = repo.index.counts()
        last = history.list_publishes(repo, limit=1).items
        rows.append(
            {
                "name": repo.name,
                "description": repo.description,
                "entities": counts["drafts"] if shown.preview else counts["live"],
                "pending": len(repo.index.unpublished_keys()) if shown.preview else None,
                "last_publish": last[0] if last else None,
                "last_author": shown.author(last[0].author) if last else None,
            }
        )
    return render(request, "repositories.html", repos=rows)


@router.get("/repos/{repo}")
@needs_preview(when=a_draft_view_or_draft_filters)  # the same rule as GET /repos/{repo}/entities
def entity_list(
    request: Request,
    repo: RepoDep,
    principal: PrincipalDep,
    audience: AudienceDep,
    view: Literal["draft", "published", ""] = "",
    q: Text = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    locale: Annotated[str | None, Query(max_length=32)] = None,
    changed: Literal["yes", "no", ""] = "",
    deleted: bool = False,
    author: Annotated[str | None, Query(max_length=320)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    state = view or ("draft" if audience.preview else "published")
    where = ListFilter(
        state=state,
        type=type or None,
        locale=locale or None,
        has_unpublished_changes={"yes": True, "no": False}.get(changed),
        deleted=deleted,
        title=q or None,
        author=author or None,
    )
    page = entities.list_entities(repo, where, cursor=cursor or None, limit=PAGE)
    items = audience.entities(repo, [EntityOut.model_validate(e) for e in page.items])
    filters = {
        "view": view,
        "q": q,
        "type": type,
        "locale": locale,
        "changed": changed,
        "deleted": deleted,
        "author": author,
    }
    return render(
        request,
        "entities.html",
        repo=repo,
        preview=audience.preview,
        state=state,
        items=items,
        damaged=page.damaged,
        next_cursor=page.next_cursor,
        filters=filters,
    )


@dataclass(frozen=True, slots=True)
class _Row:
    label: str
    old: str | None
    new: str | None
    changed: bool


@router.get("/repos/{repo}/entities/{key}")
@needs_preview(when=a_version_or_the_versions)
def entity_page(
    request: Request,
    repo: RepoDep,
    key: str,
    principal: PrincipalDep,
    audience: AudienceDep,
    version: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    if not audience.preview:
        live = audience.entity(repo, EntityOut.model_validate(serve(entities.get_entity(repo, key))))
        return render(request, "entity_live.html", repo=repo, key=key, live=live)
    draft = _view(lambda: entities.get_entity(repo, key, state="draft"))
    live_entity = _view(lambda: entities.get_entity(repo, key, state="published"))
    versions = entities.list_versions(repo, key, cursor=cursor, limit=PAGE)  # unknown key: 404 here
    tip = draft.commit if draft else entities.list_versions(repo, key, limit=1).items[0].commit
    old: Entity | None
    if version is not None:
        old = entities.get_entity(repo, key, version=version)
        changes = history.diff(repo, key, from_=str(version), to="draft").changes if draft else []
        old_label = f"Version {version}"
    else:
        old = live_entity
        differs = draft is not None and draft.has_unpublished_changes
        changes = history.diff(repo, key, from_="published", to="draft").changes if differs else []
        old_label = "Live"
    usages = audience.usages(repo, key, containers.where_used(repo, key))
    return render(
        request,
        "entity.html",
        repo=repo,
        key=key,
        draft=draft,
        live=live_entity,
        old=old,
        old_label=old_label,
        version=version,
        rows=_side_by_side(old, draft, {c.path for c in changes}),
        diffs=field_diffs(changes),
        versions=versions,
        etag=tip,
        usages=usages,
        may_write=may_write(principal, repo),
        may_publish=may_publish(principal, repo),
        done=done,
    )


def _view(read: Callable[[], Entity]) -> Entity | None:
    try:
        return read()
    except EntityNotFound:
        return None


def _side_by_side(old: Entity | None, new: Entity | None, changed: set[str]) -> list[_Row]:
    def cells(e: Entity | None) -> dict[str, str]:
        if e is None:
            return {}
        out = {"title": e.title, "type": e.type, "locale": e.locale, "base_path": e.base_path or ""}
        for name, value in sorted(e.fields.items()):
            out[f"fields/{name}"] = shown(value) or ""
        if e.links:
            out["links"] = "\n".join(f"{kind}: {', '.join(targets)}" for kind, targets in sorted(e.links.items()))
        if e.members is not None:
            out["members"] = "\n".join(m.key + (f" (pinned {m.pin[:10]})" if m.pin else "") for m in e.members)
        return out

    left, right = cells(old), cells(new)
    rows = []
    for label in dict.fromkeys([*left, *right]):
        touched = any(p == "/" + label or p.startswith("/" + label + "/") for p in changed)
        rows.append(_Row(label, _clip(left.get(label)), _clip(right.get(label)), touched))
    return rows


def _clip(value: str | None) -> str | None:
    if value is None or len(value) <= PREVIEW_SHOWN:
        return value
    return value[:PREVIEW_SHOWN] + f"\n… {len(value) - PREVIEW_SHOWN:,} more characters (see Compare)"

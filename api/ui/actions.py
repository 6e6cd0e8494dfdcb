"""Forms: sign in and out, and the entity actions. Each action is the same library call its
REST route makes, with the same scope check, sent with the ETag the page was drawn from; a
stale page's action is refused (412) and the page says what changed since."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import principal_for_token
from api.body import read_body, validate_body
from api.deps import Publisher, RepoDep, Writer, parse_etag
from api.problems import HTTPProblem
from api.schemas import UnpublishRequest
from api.ui import session
from api.ui.render import render
from api.ui.route import UIRoute
from gitstore import content
from gitstore.entities.api import IfMatch
from gitstore.errors import InvalidInput
from gitstore.publishing import api as publishing

router = APIRouter(prefix="/ui", route_class=UIRoute, include_in_schema=False)

_NEXT = re.compile(r"/ui(/[A-Za-z0-9._/-]*)?")  # only a page of this app: never an open redirect


async def read_form(request: Request) -> dict[str, str]:
    """The posted form, once its CSRF token is checked; anything but a urlencoded form is a 415."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise HTTPProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the form as application/x-www-form-urlencoded",
        )
    raw = (await read_body(request)).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True))
    session.check_csrf(request, form.get("csrf"))
    return form


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/ui") -> HTMLResponse:
    return render(request, "sign_in.html", next=next if _NEXT.fullmatch(next) else "/ui", error=None)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("token", "").strip()
    target = form.get("next", "/ui")
    target = target if _NEXT.fullmatch(target) else "/ui"
    if not token or principal_for_token(request, token) is None:
        return render(request, "sign_in.html", 401, next=target, error="That token is unknown, expired or revoked.")
    response = RedirectResponse(target, status_code=303)
    session.start(request, response, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await read_form(request)
    response = RedirectResponse("/ui", status_code=303)
    session.end(response)
    return response


def _expected(form: dict[str, str]) -> IfMatch:
    return IfMatch(parse_etag(f'"{form.get("etag", "")}"'))


def _back(repo: str, key: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/repos/{repo}/entities/{key}?done={done}", status_code=303)


def _stale(request: Request, key: str, expected: IfMatch) -> None:
    """Remember the page's ETag, so the 412 page can link to what changed since."""
    request.state.stale = {"key": key, "etag": expected.commit}


@router.post("/repos/{repo}/entities/{key}/publish")
async def publish(request: Request, repo: RepoDep, key: str, principal: Publisher) -> Response:
    form = await read_form(request)
    expected = _expected(form)
    _stale(request, key, expected)
    await _threaded(content.publish, repo, [publishing.PublishTarget(key, expected=expected)], author=principal.author)
    return _back(repo.name, key, "published")


@router.post("/repos/{repo}/entities/{key}/discard")
async def discard(request: Request, repo: RepoDep, key: str, principal: Writer) -> Response:
    form = await read_form(request)
    expected = _expected(form)
    _stale(request, key, expected)
    await _threaded(content.discard_draft, repo, key, author=principal.author, expected=expected)
    return _back(repo.name, key, "discarded")


@router.post("/repos/{repo}/entities/{key}/restore")
async def restore(request: Request, repo: RepoDep, key: str, principal: Writer) -> Response:
    form = await read_form(request)
    expected = _expected(form)
    version = form.get("version", "")
    if not version.isascii() or not version.isdigit() or int(version) < 1:
        raise InvalidInput("version is a version number", errors=[{"loc": ["version"], "msg": "not a number"}])
    _stale(request, key, expected)
    await _threaded(content.restore_version, repo, key, int(version), author=principal.author, expected=expected)
    return _back(repo.name, key, "restored")


@router.post("/repos/{repo}/entities/{key}/unpublish")
async def unpublish(request: Request, repo: RepoDep, key: str, principal: Publisher) -> Response:
    form = await read_form(request)
    expected = _expected(form)
    asked = validate_body(
        UnpublishRequest,
        {
            "type": form.get("type", ""),
            "explanation": form.get("explanation") or None,
            "alternative_path": form.get("alternative_path") or None,
        },
    )
    _stale(request, key, expected)
    await _threaded(
        content.unpublish,
        repo,
        key,
        asked.type,
        author=principal.author,
        explanation=asked.explanation,
        alternative_path=asked.alternative_path,
        expected=expected,
    )
    return _back(repo.name, key, "unpublished")


async def _threaded(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Writes wait on locks and fsync: off the event loop, as FastAPI runs the REST routes."""
    return await run_in_threadpool(call, *args, **kwargs)

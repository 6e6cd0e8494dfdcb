"""Who is asking, and what they may do: every route asks here, none decides for itself.

A caller proves who they are with `Authorization: Bearer <token>` (a `gst_` token from the
credentials file, or a signed access token from `/oauth/token`) or, for git, HTTP Basic with
the token as the password. With no credentials configured the server trusts loopback callers
as the configured local author and refuses everyone else. With credentials configured, callers
without a token are refused, or are live-only readers if anonymous reading is on.

A caller with no scope on a repository is told it does not exist (404), so tokens do not reveal
what else a server holds; a caller with some scope but not the one a route needs gets 403.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from api import oauth
from api.problems import HTTPProblem
from api.ratelimit import enforce_rate_limit
from gitstore import ContentRepository
from gitstore.access.credentials import Credentials
from gitstore.access.scopes import EVERY_REPOSITORY, SCOPES, Grants, Principal, Scope

__all__ = [
    "Principal",
    "caller",
    "current_principal",
    "may_preview",
    "principal_for_token",
    "repository_hidden",
    "require",
    "require_preview",
]

_EVERYTHING = {EVERY_REPOSITORY: frozenset(SCOPES)}
_ANONYMOUS_READ = {EVERY_REPOSITORY: frozenset({"read"})}


def current_principal(request: Request) -> Principal:
    """Authenticate the request once; later calls in the same request reuse the answer."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = request.state.principal = _authenticate(request)
        enforce_rate_limit(request, principal)
    return principal


async def caller(request: Request) -> Principal:
    """`current_principal` as a dependency. Async, because it does not wait on anything slow (a
    stat of the credentials file, a re-read when it changed, a hash, a count): FastAPI runs every
    sync dependency in its threadpool, and those hand-offs cost a live read more CPU than the
    read itself (measured with bench.load)."""
    return current_principal(request)


def may_preview(principal: Principal, repo: ContentRepository) -> bool:
    """May this caller see drafts and history of `repo`?"""
    return principal.may(repo.name, "preview")


def require_preview(principal: Principal, repo: ContentRepository, request: Request | None = None) -> None:
    """Refuse a caller without the draft right: 401 with a challenge (Basic for git) if they
    sent no credentials, 403 if theirs do not reach."""
    if not may_preview(principal, repo):
        raise _missing(principal, "preview", repo.name, request)


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold `scope` on the repository in the path."""

    async def check(request: Request, principal: Annotated[Principal, Depends(caller)]) -> Principal:
        name = request.path_params["repo"]
        if not principal.scopes_on(name):
            raise repository_hidden(name)
        if not principal.may(name, scope):
            raise _missing(principal, scope, name)
        return principal

    return check


def require_everywhere(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency for server-wide routes (tokens, clients): `scope` on `*`."""

    async def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not principal.may(EVERY_REPOSITORY, scope):
            raise _missing(principal, scope, EVERY_REPOSITORY)
        return principal

    return check


def repository_hidden(name: str) -> HTTPProblem:
    # The same answer as for a repository that does not exist.
    return HTTPProblem(404, "repository-not-found", "Repository not found", f"no repository {name!r}")


def _missing(principal: Principal, scope: str, repo: str, request: Request | None = None) -> HTTPProblem:
    if principal.anonymous:
        return _unauthenticated(f"reading beyond live content needs a token with the {scope!r} scope", request)
    where = "every repository" if repo == EVERY_REPOSITORY else f"repository {repo!r}"
    return HTTPProblem(
        403, "forbidden", "Forbidden", f"this needs the {scope!r} scope on {where}", required_scope=scope
    )


def _authenticate(request: Request) -> Principal:
    credentials: Credentials = request.app.state.credentials
    header = request.headers.get("authorization")
    if header is not None:
        principal = _from_header(request, header)
        if principal is None:
            raise _unauthenticated("the token is unknown, expired or revoked", request, error="invalid_token")
        if request.app.state.settings.anonymous_read:
            # A credential never loses what callers without one have: a token scoped to another
            # repository still reads this one's live content, not a 404 (issue 20).
            principal = dataclasses.replace(principal, grants=_with_anonymous_read(principal.grants))
        return principal
    settings = request.app.state.settings
    if credentials.is_open:
        if not _from_loopback(request):
            raise HTTPProblem(
                403,
                "loopback-only",
                "Loopback only",
                "no credentials are configured, so this server serves only its own machine",
            )
        return Principal(settings.author_name, settings.author_email, _EVERYTHING, None)
    if settings.anonymous_read:
        return Principal("anonymous", "anonymous@gitstore.invalid", _ANONYMOUS_READ, None, anonymous=True)
    raise _unauthenticated("send Authorization: Bearer <token>", request)


def _with_anonymous_read(grants: Grants) -> dict[str, frozenset[str]]:
    return {**grants, EVERY_REPOSITORY: grants.get(EVERY_REPOSITORY, frozenset()) | {"read"}}


def _from_header(request: Request, header: str) -> Principal | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        # git sends what the clone URL or credential helper holds; the token is the password
        # (or the user name, as some tools put it there).
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        value = password or user
    elif scheme.lower() != "bearer":
        return None
    return principal_for_token(request, value)


def principal_for_token(request: Request, token: str) -> Principal | None:
    """Who a bearer token (a `gst_` token or a signed access token) stands for, or None. The web
    app's session cookie holds one, checked here on every request like a header's."""
    credentials: Credentials = request.app.state.credentials
    if token.startswith("gst_"):
        return credentials.authenticate_token(token)
    return oauth.verify_access_token(credentials, token)


# What a proxy adds when it relays a request: a request that carries one came from somewhere
# else, whatever address it arrived from (a proxy on this machine is loopback to us).
_RELAYED = ("forwarded", "x-forwarded-for", "x-real-ip")


def _from_loopback(request: Request) -> bool:
    if any(name in request.headers for name in _RELAYED):
        return False
    host = request.client.host if request.client else None
    try:
        return host is None or ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Not an address: an in-process client (tests), or a Unix socket peer; neither is remote.
        return True


def _unauthenticated(detail: str, request: Request | None = None, *, error: str | None = None) -> HTTPProblem:
    # git answers a Basic challenge with the URL's or the credential helper's token.
    git = request is not None and request.url.path.startswith("/git/")
    challenge = 'Basic realm="gitstore"' if git else 'Bearer realm="gitstore"'
    if error and not git:
        challenge += f', error="{error}"'
    return HTTPProblem(
        401, "unauthenticated", "Authentication required", detail, headers={"WWW-Authenticate": challenge}
    )

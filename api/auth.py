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
import functools
import inspect
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from api import oauth
from api.problems import HTTPProblem
from api.ratelimit import enforce_rate_limit
from gitstore import ContentRepository
from gitstore.access.api import EVERY_REPOSITORY, SCOPES, CredentialStore, Grants, Principal, Scope

__all__ = [
    "Principal",
    "a_draft_view",
    "a_draft_view_or_a_version",
    "a_draft_view_or_draft_filters",
    "a_draft_view_or_whether_drafts_differ",
    "a_version_or_the_versions",
    "caller",
    "current_principal",
    "may_preview",
    "may_publish",
    "may_write",
    "needs_preview",
    "principal_for_token",
    "repository_hidden",
    "require",
    "require_admin_to_create",
    "require_preview",
    "require_publish_to_import",
    "require_visible",
    "visible",
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


def visible(principal: Principal, names: Iterable[str]) -> list[str]:
    """The repositories among `names` this caller may learn exist: those they hold a scope on."""
    return [name for name in names if principal.scopes_on(name)]


def require_visible(principal: Principal, name: str) -> None:
    """Refuse a caller with no scope on repository `name` as if it did not exist (404)."""
    if not principal.scopes_on(name):
        raise repository_hidden(name)


def may_preview(principal: Principal, repo: ContentRepository) -> bool:
    """May this caller see drafts and history of `repo`?"""
    return principal.may(repo.name, "preview")


def may_write(principal: Principal, repo: ContentRepository) -> bool:
    """May this caller change drafts of `repo` (what the web app offers them)?"""
    return principal.may(repo.name, "write")


def may_publish(principal: Principal, repo: ContentRepository) -> bool:
    """May this caller publish in `repo` (what the web app offers them)?"""
    return principal.may(repo.name, "publish")


def require_preview(principal: Principal, repo: ContentRepository, request: Request | None = None) -> None:
    """Refuse a caller without the draft right: 401 with a challenge (Basic for git) if they
    sent no credentials, 403 if theirs do not reach."""
    if not may_preview(principal, repo):
        raise _missing(principal, "preview", repo.name, request)


def require_admin_to_create(principal: Principal, name: str) -> None:
    """Creating repository `name` needs the admin scope on that name (or on `*`)."""
    if not principal.may(name, "admin"):
        raise HTTPProblem(403, "forbidden", "Forbidden", "creating a repository needs the 'admin' scope on it")


def require_publish_to_import(principal: Principal, repo: ContentRepository, *, publish: bool, dry_run: bool) -> None:
    """An import that publishes what it writes needs the publish scope too; a dry run writes
    nothing, so it needs only what any import needs (write)."""
    if publish and not dry_run and not principal.may(repo.name, "publish"):
        raise HTTPProblem(
            403,
            "forbidden",
            "Forbidden",
            f"publishing an import needs the 'publish' scope on repository {repo.name!r}",
            required_scope="publish",
        )


# What asks a route for drafts, by the route's own arguments (`needs_preview(when=...)`).
def a_draft_view(state: str, **_: object) -> bool:
    return state == "draft"


def a_draft_view_or_a_version(state: str, version: int | None = None, commit: str | None = None, **_: object) -> bool:
    """Past versions are history, which is draft information too."""
    return state == "draft" or version is not None or commit is not None


def a_draft_view_or_whether_drafts_differ(state: str, has_unpublished_changes: bool | None = None, **_: object) -> bool:
    return state == "draft" or has_unpublished_changes is not None


def a_draft_view_or_draft_filters(
    view: str, changed: str = "", deleted: bool = False, author: str | None = None, **_: object
) -> bool:
    """The web app's entity list: the draft view, or filters only drafts answer (whether a draft
    differs, deleted entities, who wrote them). An empty `view` is the caller's default view."""
    return view == "draft" or bool(changed or deleted or author)


def a_version_or_the_versions(version: int | None = None, cursor: int | None = None, **_: object) -> bool:
    """The web app's entity page: a past version, or a page of the version list."""
    return version is not None or cursor is not None


Route = TypeVar("Route", bound=Callable[..., Any])


def needs_preview(when: Callable[..., bool] | None = None) -> Callable[[Route], Route]:
    """Declare that a route needs the preview right on its repository: always, or when
    `when(**arguments)` says the request asks for drafts. The route takes `principal` and `repo`.

    Checked as the route is called, after FastAPI has validated the request, not as a
    dependency: a request both malformed and not allowed answers 422, as it did when each route
    checked this itself, and a route may still refuse other input before it reads drafts."""

    def declare(route: Route) -> Route:
        takes = inspect.signature(route).parameters
        assert {"principal", "repo"} <= takes.keys(), f"{route.__name__} must take principal and repo"

        def check(arguments: dict[str, Any]) -> None:
            if when is None or when(**arguments):
                require_preview(arguments["principal"], arguments["repo"])

        if inspect.iscoroutinefunction(route):

            @functools.wraps(route)
            async def checked_async(**arguments: Any) -> Any:
                check(arguments)
                return await route(**arguments)

            return checked_async  # type: ignore[return-value]

        @functools.wraps(route)
        def checked(**arguments: Any) -> Any:
            check(arguments)
            return route(**arguments)

        return checked  # type: ignore[return-value]

    return declare


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, who must hold `scope` on the repository in the path."""

    async def check(request: Request, principal: Annotated[Principal, Depends(caller)]) -> Principal:
        name = request.path_params["repo"]
        require_visible(principal, name)
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
    credentials: CredentialStore = request.app.state.credentials
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
    credentials: CredentialStore = request.app.state.credentials
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

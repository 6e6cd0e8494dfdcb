"""The browser's session and its CSRF token (ADR 0010).

The session cookie holds the bearer token the person signed in with, HttpOnly (no script can
read it) and SameSite=Lax, sent only under /ui: each request authenticates it again exactly as
an `Authorization` header (api.auth), so revoking the token or removing the OAuth client ends
the session at once, in every worker, with no session store to share. The REST API never reads
the cookie, so it needs no CSRF defence of its own.

Every form carries a token derived from a second random cookie and the session: an HMAC of the
session's digest keyed by that cookie. A page on another site can neither read the cookie nor
compute the token, so a forged form is refused (403) before anything is read or written. A new
sign-in gets a new CSRF cookie, so tokens from before it stop working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from api.auth import principal_for_token
from api.problems import HTTPProblem
from api.ratelimit import enforce_rate_limit

SESSION_COOKIE = "gitstore_session"
CSRF_COOKIE = "gitstore_csrf"
PATH = "/ui"
SESSION_SECONDS = 8 * 3600  # a working day; the token itself may end sooner


def authenticate(request: Request) -> None:
    """Make the session's token the request's principal, as `api.auth.current_principal` would
    for a header; a token that stopped working ends the session (see `finish`)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or "authorization" in request.headers:
        return
    principal = principal_for_token(request, token)
    if principal is None:
        request.state.session_ended = True
        return
    request.state.principal = principal
    request.state.signed_in = True
    enforce_rate_limit(request, principal)


def signed_in(request: Request) -> bool:
    return bool(getattr(request.state, "signed_in", False))


def csrf_token(request: Request) -> str:
    """The token this request's forms carry; makes the CSRF cookie on a first visit."""
    seed = getattr(request.state, "new_csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not seed:
        seed = request.state.new_csrf = secrets.token_urlsafe(32)
    return _token(seed, _session_of(request))


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a form whose token is not this browser's, before anything else looks at it."""
    seed = request.cookies.get(CSRF_COOKIE)
    expected = _token(seed, _session_of(request)) if seed else None
    if not sent or expected is None or not hmac.compare_digest(sent, expected):
        raise HTTPProblem(
            403,
            "csrf-failed",
            "Form expired or forged",
            "this form did not come from this browser's session: reload the page and try again",
        )


def start(request: Request, response: Response, token: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_SECONDS, path=PATH, httponly=True, samesite="lax", secure=secure
    )
    request.state.new_csrf = secrets.token_urlsafe(32)  # `finish` sets it: old forms stop working


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PATH, httponly=True, samesite="lax")


def finish(request: Request, response: Response) -> None:
    """What every page answer carries: a new CSRF cookie if one was made, the end of a session
    whose token no longer works."""
    seed = getattr(request.state, "new_csrf", None)
    if seed:
        secure = request.url.scheme == "https"
        response.set_cookie(CSRF_COOKIE, seed, path=PATH, httponly=True, samesite="lax", secure=secure)
    if getattr(request.state, "session_ended", False):
        end(response)


def _session_of(request: Request) -> str:
    token = request.cookies.get(SESSION_COOKIE) if not getattr(request.state, "session_ended", False) else None
    return hashlib.sha256((token or "").encode()).hexdigest()


def _token(seed: str, session: str) -> str:
    return hmac.new(seed.encode(), session.encode(), hashlib.sha256).hexdigest()

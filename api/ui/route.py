"""How every web app route runs: signed in from the session cookie, answered as HTML pages,
errors included, with the security headers every page carries.

An error is first answered exactly as the REST API answers it, by the app's own exception
handlers (so a reader asking for a key that was never live gets what an unknown key gets,
api.readers), then shown as a page, or left as problem+json for a client that asks for JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.ui import session
from api.ui.render import render

# No inline script or style anywhere: everything comes from /ui/static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages may hold drafts: never kept by a shared browser or proxy.
    "Cache-Control": "no-store",
}


class UIRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                session.authenticate(request)
                response = await handle(request)
            except Exception as exc:  # every failure becomes a page (or the API's problem)
                response = await error_page(request, exc)
            session.finish(request, response)
            response.headers.update(HEADERS)
            return response

        return route


async def error_page(request: Request, exc: Exception) -> Response:
    problem = await _as_problem(request, exc)
    if _wants_json(request):
        return problem
    body = orjson.loads(problem.body)
    status = problem.status_code
    keep = {k: v for k, v in problem.headers.items() if k.lower() in ("location", "retry-after")}
    if status == 401:
        return render(request, "sign_in.html", 401, next=request.url.path, error=body.get("detail"))
    page = render(request, "error.html", status, problem=body, stale=getattr(request.state, "stale", None))
    page.headers.update(keep)
    return page


async def _as_problem(request: Request, exc: Exception) -> Response:
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            try:
                return await handlers[cls](request, exc)  # type: ignore[no-any-return]
            except Exception as again:  # a handler that declines (KeyError that is not damage)
                return await handlers[Exception](request, again)  # type: ignore[no-any-return]
    return await handlers[Exception](request, exc)  # type: ignore[no-any-return]


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept

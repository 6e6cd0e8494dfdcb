"""406 for an `Accept` no answer of the route can satisfy (RFC 9110 section 12.5.1).

Each route offers the media types its OpenAPI document declares for its success answer (JSON
unless it says otherwise); the caller's Accept must admit one of them. Checked as an app-wide
dependency, before the route reads anything; most callers send no Accept or `*/*` and pay one
header lookup. A refusal is itself problem+json: errors are answered in that one form.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.datastructures import DefaultPlaceholder

from api.problems import HTTPProblem

_offered: dict[int, frozenset[str]] = {}


async def acceptable(request: Request) -> None:
    accept = request.headers.get("accept")
    if accept is None or "*/*" in accept:
        return
    route = request.scope.get("route")
    offered = _offered.get(id(route))
    if offered is None:
        offered = _offered.setdefault(id(route), _media_types(route))
    if not offered or any(_admits(accept, media_type) for media_type in offered):
        return
    raise HTTPProblem(
        406,
        "not-acceptable",
        "Not acceptable",
        f"this route answers {' or '.join(sorted(offered))}; say so in Accept, or send none",
        accepted=sorted(offered),
    )


def _media_types(route: object) -> frozenset[str]:
    """What the route's success answer may be: its declared 200 content and response class."""
    found = set()
    for status, answer in (getattr(route, "responses", None) or {}).items():
        if str(status) in ("200", "201"):
            found.update(answer.get("content", {}))
    response_class = getattr(route, "response_class", None)
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    media_type = getattr(response_class, "media_type", None)
    if media_type and getattr(route, "status_code", None) != 204:
        found.add(media_type)
    return frozenset(found)


def _admits(accept: str, media_type: str) -> bool:
    kind = media_type.split("/", 1)[0]
    for part in accept.split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if name in (media_type, f"{kind}/*", "*/*") and not _q_zero(params):
            return True
    return False


def _q_zero(params: str) -> bool:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value) == 0
            except ValueError:
                return False
    return False

"""What the OpenAPI document says about failures: any operation may answer a 4xx problem
(RFC 9457, `application/problem+json`), 503 when busy and 507 when the disk is full. Declared
once for the whole app, so clients and schemathesis know an error body's shape everywhere."""

from __future__ import annotations

from typing import Any

from api.problems import MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:gitstore:problem:<kind>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each invalid part of the request: where (loc) and what is wrong (msg)",
            "items": {"type": "object"},
        },
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": _problem("The request cannot be carried out as sent; nothing was written"),
    503: _problem("Busy (a lock stayed held); nothing was written, retry after Retry-After"),
    507: _problem("The disk is full; nothing was written"),
}

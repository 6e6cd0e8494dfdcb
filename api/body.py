"""Request bodies: size-capped, time-bounded, strictly parsed JSON.

Stock FastAPI lets several malformed bodies through to 500s or silently accepts them (measured:
lone surrogates and NaN -> 500, duplicate keys -> last one wins, wrong media type -> 422, no
size limit at all). Every body here goes through `read_json`, which refuses each of those with
a 4xx problem before anything is written. Nor does uvicorn bound how long a body may take, so a
client that declares one and never sends it would hold its connection open forever: every
body is read through `body_chunks`, which answers 408 once it is overdue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from api.problems import HTTPProblem
from gitstore.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

_MIB = 1024 * 1024

JSON_TYPES = frozenset({"application/json"})
MERGE_PATCH_TYPES = frozenset({"application/merge-patch+json", "application/json"})


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past the size limit and 408 when overdue (see `body_chunks`)."""
    return b"".join([chunk async for chunk in body_chunks(request, request.app.state.settings.max_body_bytes)])


async def body_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives, refused with 413 past `limit` bytes: from Content-Length before
    reading anything, and by counting while streaming (a chunked body has no Content-Length).
    Refused with 408 once the read has taken the body timeout, plus the timeout again for each
    MiB received so far: a bound on the whole read, since a body dripped a byte at a time never
    leaves a long gap, that still lets a large import over a slow link finish."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    timeout = request.app.state.settings.body_timeout
    started = asyncio.get_running_loop().time()
    size = 0
    chunks = aiter(request.stream())
    while True:
        try:
            async with asyncio.timeout_at(started + timeout * (1 + size // _MIB)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise timed_out(timeout) from None
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        yield chunk


async def read_json(request: Request, *, media_types: frozenset[str] = JSON_TYPES, optional: bool = False) -> Any:
    """The parsed JSON body. With `optional`, an empty body without Content-Type gives None."""
    content_type = request.headers.get("content-type")
    if content_type is None and optional:
        if await read_body(request):
            raise _unsupported(media_types)
        return None
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in media_types:
        raise _unsupported(media_types)
    raw = await read_body(request)
    if not raw and optional:
        return None
    return parse_strict(raw)


def validate_body(model: type[M], data: Any) -> M:
    """`data` as `model`, or InvalidInput listing every problem (None counts as `{}`)."""
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        found = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
        raise InvalidInput("the request body is not valid", errors=found) from None


def parse_strict(raw: bytes) -> Any:
    """JSON with no NaN/Infinity, no lone surrogates, no invalid UTF-8, no duplicate keys and no
    integer that does not fit in 64 bits."""
    try:
        value = orjson.loads(raw)  # refuses NaN, Infinity, bad UTF-8, lone surrogates, >1024 deep
    except orjson.JSONDecodeError as exc:
        raise HTTPProblem(400, "malformed-json", "Malformed JSON", f"the body is not valid JSON: {exc}") from None
    if isinstance(value, (dict, list)):
        try:
            json.loads(raw, object_pairs_hook=_refuse_duplicates, parse_int=_exact_integer)
        except RecursionError:
            raise HTTPProblem(400, "malformed-json", "Malformed JSON", "the body nests too deeply") from None
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise HTTPProblem(400, "malformed-json", "Malformed JSON", f"duplicate key {name!r} in a JSON object")
        seen[name] = value
    return seen


def _exact_integer(text: str) -> int:
    # orjson reads an integer past 64 bits as a float: the entity would not hold what was sent.
    value = int(text)
    if not -(2**63) <= value <= 2**64 - 1:
        raise InvalidInput(
            f"the integer {text} does not fit in 64 bits; send it as a string",
            errors=[{"loc": ["body"], "msg": "integer out of range"}],
        )
    return value


def too_large(limit: int) -> HTTPProblem:
    return HTTPProblem(
        413,
        "payload-too-large",
        "Payload too large",
        f"the body is larger than {limit} bytes",
        limit=limit,
    )


def timed_out(timeout: float) -> HTTPProblem:
    # The rest of the body may still arrive; closing is the only way not to read it as a request.
    return HTTPProblem(
        408,
        "request-timeout",
        "Request timeout",
        f"the request body did not arrive in time ({timeout:g} seconds for each MiB)",
        headers={"Connection": "close"},
    )


def _unsupported(media_types: frozenset[str]) -> HTTPProblem:
    accepted = sorted(media_types)
    return HTTPProblem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        f"send the body as {' or '.join(accepted)}",
        accepted=accepted,
    )


async def _json_body(request: Request) -> Any:
    return await read_json(request)


async def _optional_json_body(request: Request) -> Any:
    return await read_json(request, optional=True)


async def _merge_patch_body(request: Request) -> Any:
    return await read_json(request, media_types=MERGE_PATCH_TYPES)


# Route parameters: `body: JsonBody`. Action POSTs take OptionalJsonBody (empty, or JSON).
JsonBody = Annotated[Any, Depends(_json_body)]
OptionalJsonBody = Annotated[Any, Depends(_optional_json_body)]
MergePatchBody = Annotated[Any, Depends(_merge_patch_body)]


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` declaring a JSON body of `model` (`required=False`: an `OptionalJsonBody`):
    routes read bodies through `JsonBody` (strict parsing first), so FastAPI cannot infer the
    schema itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }

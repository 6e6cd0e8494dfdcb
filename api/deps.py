"""Request dependencies: the store, the repository, who is asking, and preconditions."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Path, Request, Response
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, caller, require, require_visible
from api.problems import HTTPProblem
from api.replica_reads import REPLICA
from api.schemas import repo_name
from gitstore import ContentRepository, Store
from gitstore.entities.api import IfAbsent, IfExists, IfMatch, Precondition
from gitstore.errors import InvalidInput
from gitstore.names import REPO_NAME_PATTERN

_COMMIT = re.compile(r"[0-9a-f]{40}")
# RFC 9110 section 8.8.3: an entity-tag list, each tag `"opaque"` or weak `W/"opaque"`.
_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')
# git never names a commit by the null id, so no draft tip matches it: the write is refused 412
# with the current ETag, as any other stale precondition is.
_MATCHES_NOTHING = "0" * 40


async def get_store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


async def get_repo(
    request: Request,
    repo: Annotated[
        str,
        Path(
            description="repository name", min_length=1, max_length=64, json_schema_extra={"pattern": REPO_NAME_PATTERN}
        ),
        AfterValidator(repo_name),
    ],
    principal: Annotated[Principal, Depends(caller)],
) -> ContentRepository:
    """The repository in the path, for a caller with any scope on it (every scope implies read).

    Opening a repository the first time touches the disk and may wait on its index, so that
    happens in the threadpool; every later request finds it open (one threadpool round trip
    less a request: ~0.1 ms of a live GET's ~1 ms). The store is the app's, not a dependency
    of its own: FastAPI solves each dependency anew for every request, ~10 us apiece here."""
    return await open_repository(request, principal, repo)


async def open_repository(request: Request, principal: Principal, name: str) -> ContentRepository:
    """`get_repo` for a name already checked against the naming rule (api.live_reads)."""
    require_visible(principal, name)
    if request.scope.get(REPLICA) == name:  # a live read an in-sync replica answers (api.replica_reads)
        return await run_in_threadpool(request.app.state.cluster.replication.replica_repository, name)
    store: Store = request.app.state.store
    opened = store.opened(name)
    if opened is not None:
        return opened
    return await run_in_threadpool(store.repository, name)


# The forms parse_etag takes, for the document (enforced there, answering 400): "*", or a list of
# weak entity-tags with at most one strong one, a commit (it also takes that one repeated).
_WEAK = r'W/"[\x21\x23-\x7e\x80-\xff]*"'
_STRONG = r'"[0-9a-f]{40}"'
_NEXT = r"\s*,\s*"
IF_MATCH_PATTERN = rf"^\s*(?:\*|(?:{_WEAK}{_NEXT})*{_STRONG}(?:{_NEXT}{_WEAK})*|{_WEAK}(?:{_NEXT}{_WEAK})*)\s*$"
IfMatchHeader = Annotated[
    str | None,
    Header(
        description='"<commit>": write only if the draft tip is still that commit; *: only if it exists',
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
]


async def get_precondition(
    if_match: IfMatchHeader = None,
    if_none_match: Annotated[
        str | None,
        Header(
            description="*: create only (not with If-Match: one or the other)",
            json_schema_extra={"pattern": r"^\s*\*\s*$"},
        ),
    ] = None,
) -> Precondition:
    if if_match is not None and if_none_match is not None:
        raise HTTPProblem(
            400,
            "malformed-precondition",
            "Malformed precondition",
            "send If-Match or If-None-Match, not both",
        )
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise HTTPProblem(
                400,
                "malformed-precondition",
                "Malformed precondition",
                'If-None-Match takes only "*" here',
            )
        return IfAbsent()
    return _if_match(if_match)


async def get_if_match(request: Request, if_match: IfMatchHeader = None) -> IfMatch | IfExists | None:
    """For routes that move live content: only If-Match makes sense, so only it is declared."""
    if "if-none-match" in request.headers:
        raise InvalidInput(
            "this route takes If-Match, not If-None-Match",
            errors=[{"loc": ["If-None-Match"], "msg": "not allowed"}],
        )
    return _if_match(if_match)


def _if_match(if_match: str | None) -> IfMatch | IfExists | None:
    if if_match is None:
        return None
    if if_match.strip() == "*":
        return IfExists()
    return IfMatch(parse_etag(if_match))


def parse_etag(value: str) -> str:
    """The commit an If-Match names. A weak tag never matches under the strong comparison
    If-Match uses (RFC 9110 section 13.1.1), so a list of only weak tags is a failed
    precondition, not a malformed one."""
    tags, at = [], 0
    while at < len(value):
        match = _TAG.match(value, at)
        if match is None or match.end() == at:
            raise _malformed()
        tags.append((bool(match.group(1)), match.group(2)))
        at = match.end()
    strong = {opaque for weak, opaque in tags if not weak}
    if not tags or len(strong) > 1 or not all(_COMMIT.fullmatch(opaque) for opaque in strong):
        raise _malformed()
    return strong.pop() if strong else _MATCHES_NOTHING


def _malformed() -> HTTPProblem:
    return HTTPProblem(
        400,
        "malformed-precondition",
        "Malformed precondition",
        'If-Match takes "*" or one strong ETag: "<40 lower-case hex digits>" (weak ETags never match)',
    )


def set_etag(response: Response, commit: str) -> None:
    response.headers["ETag"] = f'"{commit}"'


StoreDep = Annotated[Store, Depends(get_store)]
RepoDep = Annotated[ContentRepository, Depends(get_repo)]
PreconditionDep = Annotated[Precondition, Depends(get_precondition)]
IfMatchDep = Annotated[IfMatch | IfExists | None, Depends(get_if_match)]
PrincipalDep = Annotated[Principal, Depends(caller)]
Writer = Annotated[Principal, Depends(require("write"))]
Publisher = Annotated[Principal, Depends(require("publish"))]
Admin = Annotated[Principal, Depends(require("admin"))]

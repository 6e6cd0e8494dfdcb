"""RFC 9457 problem details: the one place where errors become HTTP.

Each gitstore error class maps to a status and a problem type in `PROBLEMS`; the handler is
registered once on the root class and Starlette resolves subclasses by MRO. HTTP-only problems
(bad JSON, wrong media type, too large) are raised as `HTTPProblem`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.methods import allowed_methods
from gitstore import errors
from gitstore.storage.api import missing_object

log = logging.getLogger("gitstore.api")

PROBLEM_BASE = "urn:gitstore:problem:"
MEDIA_TYPE = "application/problem+json"

# error class -> (status, problem type, title). Most specific classes first is not needed:
# lookup walks the MRO of the raised class.
PROBLEMS: dict[type[errors.GitstoreError], tuple[int, str, str]] = {
    errors.GitstoreError: (500, "internal-error", "Internal error"),
    errors.NotFound: (404, "not-found", "Not found"),
    errors.RepositoryNotFound: (404, "repository-not-found", "Repository not found"),
    errors.EntityNotFound: (404, "entity-not-found", "Entity not found"),
    errors.VersionNotFound: (404, "version-not-found", "Version not found"),
    errors.NotAContainer: (404, "not-a-container", "Not a container"),
    errors.AlreadyExists: (409, "already-exists", "Already exists"),
    errors.RepositoryExists: (409, "repository-exists", "Repository already exists"),
    errors.Conflict: (409, "conflict", "Conflict with the current state"),
    errors.KeyRetired: (409, "key-retired", "Key retired by pruning"),
    errors.StaleVersion: (412, "precondition-failed", "Precondition failed"),
    errors.BasePathTaken: (409, "base-path-taken", "base_path already taken"),
    errors.TranslationTaken: (409, "translation-taken", "Translation already exists"),
    errors.DraftPending: (409, "draft-pending", "The draft has unpublished changes"),
    errors.Unpublished: (410, "unpublished", "Unpublished"),
    errors.Gone: (410, "gone", "Gone"),
    errors.Redirected: (301, "redirected", "Moved"),
    errors.NotFastForward: (409, "not-fast-forward", "Not a fast-forward"),
    errors.MergeConflict: (409, "merge-conflict", "Conflicting changes"),
    errors.InvalidInput: (422, "invalid-input", "Invalid input"),
    errors.InvalidName: (422, "invalid-name", "Invalid name"),
    errors.InvalidDocument: (422, "invalid-document", "Invalid entity document"),
    errors.InvalidBundle: (422, "invalid-bundle", "Invalid bundle"),
    errors.Busy: (503, "busy", "Busy, try again"),
    errors.Cluster: (500, "cluster-error", "Cluster error"),
    errors.ControlPlaneUnavailable: (503, "control-plane-unavailable", "Control plane unavailable, try again"),
    # 503, not 421: a client retries a 503 after Retry-After; 421 is the nodes' own answer to a
    # forwarded request (api.forwarding), which the forwarding node retries for the client.
    errors.NotOwner: (503, "not-owner", "This node does not own the repository now, try again"),
    errors.OwnerUnavailable: (503, "owner-unavailable", "The repository's node is not answering, try again"),
    errors.NoNodeAvailable: (503, "no-node-available", "No node can take the repository, try again"),
    errors.NodeNameClash: (409, "node-name-clash", "Node name already in use"),
    errors.UnknownNode: (404, "unknown-node", "Unknown node"),
    errors.NodeDown: (409, "node-down", "Node down"),
    errors.MoveInProgress: (409, "move-in-progress", "The repository is already moving"),
    errors.MoveToOwner: (409, "move-to-owner", "The repository already lives there"),
    # The other node is what failed (it did not answer, or its copy differs): a gateway's error.
    errors.MoveFailed: (502, "move-failed", "The move could not finish"),
    errors.ReplicationFactorTooHigh: (422, "replication-factor-too-high", "More copies than nodes"),
    errors.ReplicaBehind: (409, "replica-behind", "The replica may lack acknowledged writes"),
    errors.NotAReplica: (409, "not-a-replica", "The node holds no replica of the repository"),
    errors.PromotionLost: (409, "promotion-lost", "The repository changed during the promotion"),
    errors.ReplicaOutOfSync: (409, "replica-out-of-sync", "The replica does not follow this primary now"),
    errors.ReplicationFailed: (503, "replication-failed", "The write could not be replicated, try again"),
    errors.StorageFull: (507, "storage-full", "Insufficient storage"),
    # Not 503: retrying cannot help until an operator restores the object (docs/decisions/0005).
    errors.CorruptObject: (500, "corrupt-object", "Stored content is damaged"),
    errors.DamagedBackup: (422, "damaged-backup", "Backup damaged or incomplete"),
    errors.BackupUnavailable: (502, "backup-unavailable", "Backup storage unavailable"),
    errors.BadSetting: (500, "bad-setting", "The service is misconfigured"),
}


class HTTPProblem(Exception):
    """A problem that only exists at the HTTP level."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers, self.extra = headers, extra


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _lookup(exc: errors.GitstoreError) -> tuple[int, str, str]:
    for cls in type(exc).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return PROBLEMS[errors.GitstoreError]


def _extensions(exc: errors.GitstoreError) -> dict[str, Any]:
    extra = dict(exc.extra)
    if isinstance(exc, errors.StaleVersion):
        current = extra.get("current")
        return {"current_etag": f'"{current}"' if current else None}
    if isinstance(exc, errors.BasePathTaken):
        return {"holder": extra.get("holder"), "base_path": extra.get("base_path")}
    if isinstance(exc, errors.MergeConflict):
        return {"conflicts": extra.get("conflicts", [])}
    if isinstance(exc, errors.InvalidInput):
        return {"errors": extra.get("errors", []), **{k: v for k, v in extra.items() if k == "containers"}}
    if isinstance(exc, errors.Unpublished):
        return {"explanation": extra.get("explanation"), "alternative_path": extra.get("alternative_path")}
    if isinstance(exc, errors.TranslationTaken):
        return {k: extra.get(k) for k in ("holder", "content_id", "locale")}
    if isinstance(exc, errors.Cluster):
        return {k: v for k, v in extra.items() if k in ("name", "node")}
    if isinstance(exc, errors.CorruptObject):
        return {k: v for k, v in extra.items() if k == "entities"}  # never the object or its file
    return {k: v for k, v in extra.items() if k in ("key", "name", "containers")}


async def gitstore_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GitstoreError)
    status, kind, title = _lookup(exc)
    # A cluster error may know better how long it lasts (a dead node's heartbeat window).
    headers = {"Retry-After": str(exc.extra.get("retry_after", 1))} if status == 503 else None
    if isinstance(exc, errors.Redirected) and "repo" in request.path_params:
        # The alternative path is a base_path: point at what the live site serves there.
        headers = {"Location": f"/repos/{request.path_params['repo']}/paths{exc.extra['alternative_path']}"}
    if status == 503:  # shedding load: a line each would flood the log just when it is busiest
        log.info("%s %s -> %s: %s", request.method, request.url.path, status, exc.detail)
    elif status >= 500:
        log.error("%s %s -> %s: %s", request.method, request.url.path, status, exc.detail)
    return problem(status, kind, title, exc.detail, headers=headers, **_extensions(exc))


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPProblem)
    return problem(exc.status, exc.kind, exc.title, exc.detail, headers=exc.headers, **exc.extra)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # A path parameter two dependencies read (the repository) is checked, and refused, twice.
    unique = dict.fromkeys((tuple(e["loc"]), e["msg"]) for e in exc.errors())
    found = [{"loc": list(loc), "msg": msg} for loc, msg in unique]
    return problem(
        422,
        "invalid-request",
        "Invalid request",
        "the request parameters are not valid",
        errors=found,
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the methods of the first route it tried at this path.
        headers = {"Allow": ", ".join(allowed_methods(request.app, request.scope["path"]))}
    return problem(exc.status_code, kind, str(exc.detail), str(exc.detail), headers=headers)


async def _lookup_error(request: Request, exc: Exception) -> Response:
    """A missing object surfaces as libgit2's "not found" (a KeyError) from wherever it was read:
    that is damage, answered like any other; every other KeyError is a bug, left to `_unexpected`."""
    assert isinstance(exc, KeyError)
    damaged = missing_object(exc)
    if damaged is None:
        raise exc
    return await gitstore_error(request, damaged)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal-error", "Internal error", "the server failed; nothing was acknowledged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.GitstoreError, gitstore_error)
    app.add_exception_handler(HTTPProblem, _http_problem)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(KeyError, _lookup_error)
    app.add_exception_handler(Exception, _unexpected)

"""Read-only smart HTTP: two remotes per repository, one URL each.

    /git/<repo>.git        the repository itself: drafts, history, every ref (the preview
                           right; anyone else is challenged with 401, or refused with 403)
    /git/live/<repo>.git   the public copy: what is live, one commit per publish, and no
                           object of any draft (gitstore.publishing.mirror; the read right)
    /internal/cluster/git/<repo>.git
                           the repository itself for another node copying it (a cluster move):
                           only that node's git password opens it (api.nodes), and it is served
                           as it is, never folded first (a fold moves a ref, which a repository
                           fenced for its move refuses)

Each URL always serves the same repository, whoever asks, so a `git fetch --prune` with and
without a token never deletes refs, and asking the full remote for drafts without the right
fails loudly instead of fetching nothing. git's own server side does the protocol work
(`git upload-pack --stateless-rpc`, v0 and v2); this module only decides whether a caller may
read and bounds the cost:

- callers authenticate as on every route (git sends the token as the Basic password);
- at most `max_clones` upload-packs run per repository per worker, each under a time limit,
  and a client that disconnects takes its git process down with it;
- push (receive-pack) and the dumb protocol are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import current_principal, require_preview, require_visible
from api.body import read_body
from api.nodes import fetching_node
from api.problems import HTTPProblem
from api.replica_reads import REPLICA
from gitstore import ContentRepository, Store
from gitstore.entities.api import folded_draft_head
from gitstore.publishing.api import ensure_live_mirror

router = APIRouter(prefix="/git", tags=["git"])
nodes = APIRouter(prefix="/internal/cluster/git", include_in_schema=False)

_GIT_PROTOCOL = re.compile(r"version=[0-9]")
_semaphores: dict[str, asyncio.Semaphore] = {}


async def _served_path(request: Request, name: str, *, live: bool, node: bool = False) -> Path:
    serve = _as_it_is if node else _public_copy if live else _full_repository
    return await run_in_threadpool(serve, request, name)


def _full_repository(request: Request, name: str) -> Path:
    repo = _visible_repository(request, name)
    require_preview(current_principal(request), repo, request)
    folded_draft_head(repo)  # a clone sees `draft` with every change made so far folded in
    return repo.path


def _as_it_is(request: Request, name: str) -> Path:
    store: Store = request.app.state.store
    return store.repository(name).path


def _a_node_copying(request: Request, name: str) -> None:
    """Only another node of the cluster, with its git password for this repository."""
    if fetching_node(request, name) is None:
        raise HTTPProblem(
            401,
            "unauthenticated",
            "Authentication required",
            "this remote serves the nodes of the cluster only",
            headers={"WWW-Authenticate": 'Basic realm="gitstore nodes"'},
        )


def _public_copy(request: Request, name: str) -> Path:
    return ensure_live_mirror(_visible_repository(request, name))


def _visible_repository(request: Request, name: str) -> ContentRepository:
    """The repository, if the caller has a scope on it; otherwise it does not exist for them.
    For the public copy of a repository this node holds an in-sync replica of, that replica
    (api.replica_reads)."""
    require_visible(current_principal(request), name)
    if request.scope.get(REPLICA) == name:
        replica: ContentRepository = request.app.state.cluster.replication.replica_repository(name)
        return replica
    store: Store = request.app.state.store
    return store.repository(name)


def _git_env(request: Request) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
    protocol = request.headers.get("git-protocol", "")
    if _GIT_PROTOCOL.match(protocol):
        env["GIT_PROTOCOL"] = protocol.split(":", 1)[0]
    return env


def _upload_pack(path: Path, *extra: str) -> list[str]:
    return [
        "git",
        "-c",
        "uploadpack.allowFilter=false",
        "upload-pack",
        "--stateless-rpc",
        "--strict",
        *extra,
        str(path),
    ]


def _refuse_push() -> HTTPProblem:
    return HTTPProblem(
        403, "push-refused", "Push refused", "gitstore repositories are read-only over git; write through the REST API"
    )


_ADVERTISEMENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-git-upload-pack-advertisement": {}}}
}
_RESULT: dict[int | str, dict[str, Any]] = {200: {"content": {"application/x-git-upload-pack-result": {}}}}


@router.get(
    "/{repo}.git/info/refs",
    summary="Smart HTTP ref advertisement of the full repository (git-upload-pack only; preview)",
    responses=_ADVERTISEMENT,
)
async def info_refs(repo: str, request: Request, service: str | None = None) -> Response:
    return await _advertise(request, repo, service, live=False)


@router.get(
    "/live/{repo}.git/info/refs",
    summary="Smart HTTP ref advertisement of the public copy (git-upload-pack only; read)",
    responses=_ADVERTISEMENT,
)
async def live_info_refs(repo: str, request: Request, service: str | None = None) -> Response:
    return await _advertise(request, repo, service, live=True)


@router.post(
    "/{repo}.git/git-upload-pack", summary="Smart HTTP fetch and clone of the full repository", responses=_RESULT
)
async def upload_pack(repo: str, request: Request) -> StreamingResponse:
    return await _fetch(request, repo, live=False)


@router.post(
    "/live/{repo}.git/git-upload-pack", summary="Smart HTTP fetch and clone of the public copy", responses=_RESULT
)
async def live_upload_pack(repo: str, request: Request) -> StreamingResponse:
    return await _fetch(request, repo, live=True)


@nodes.get("/{repo}.git/info/refs", responses=_ADVERTISEMENT)
async def node_info_refs(repo: str, request: Request, service: str | None = None) -> Response:
    return await _advertise(request, repo, service, live=False, node=True)


@nodes.post("/{repo}.git/git-upload-pack", responses=_RESULT)
async def node_upload_pack(repo: str, request: Request) -> StreamingResponse:
    _a_node_copying(request, repo)  # cheap (one HMAC), and _fetch reads the body first
    return await _fetch(request, repo, live=False, node=True)


async def _advertise(request: Request, repo: str, service: str | None, *, live: bool, node: bool = False) -> Response:
    await run_in_threadpool(_a_node_copying if node else _visible_repository, request, repo)
    if service == "git-receive-pack":
        raise _refuse_push()
    if service != "git-upload-pack":
        raise HTTPProblem(
            403, "dumb-http-refused", "Dumb HTTP refused", "only smart HTTP is served: use git 1.6.6 or newer"
        )
    path = await _served_path(request, repo, live=live, node=node)
    env = _git_env(request)
    settings = request.app.state.settings
    proc = await asyncio.create_subprocess_exec(
        *_upload_pack(path, "--advertise-refs"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        advertisement, _ = await asyncio.wait_for(proc.communicate(), settings.upload_pack_timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise HTTPProblem(503, "busy", "Busy, try again", "the ref advertisement took too long") from None
    if proc.returncode != 0:
        raise HTTPProblem(503, "busy", "Busy, try again", "git upload-pack failed to advertise refs")
    head = b"" if env.get("GIT_PROTOCOL") == "version=2" else _pkt_line(b"# service=git-upload-pack\n") + b"0000"
    return Response(
        head + advertisement,
        media_type="application/x-git-upload-pack-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


async def _fetch(request: Request, repo: str, *, live: bool, node: bool = False) -> StreamingResponse:
    settings = request.app.state.settings
    path = await _served_path(request, repo, live=live, node=node)
    # Read the whole request before streaming the answer: Starlette's disconnect listener
    # would otherwise consume the body and the clone would hang.
    body = _decode(
        request.headers.get("content-encoding"),
        await read_body(request),
        settings.max_body_bytes,
    )
    gate = _semaphores.setdefault(repo, asyncio.Semaphore(settings.max_clones))
    if gate.locked():
        raise HTTPProblem(503, "busy", "Busy, try again", f"{settings.max_clones} clones of {repo} are already running")
    await gate.acquire()
    try:
        proc = await asyncio.create_subprocess_exec(
            *_upload_pack(path),
            env=_git_env(request),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except BaseException:
        gate.release()
        raise
    return StreamingResponse(
        _stream(proc, body, gate, settings.upload_pack_timeout),
        media_type="application/x-git-upload-pack-result",
        headers={"Cache-Control": "no-cache"},
    )


async def _stream(
    proc: asyncio.subprocess.Process, body: bytes, gate: asyncio.Semaphore, timeout: float
) -> AsyncIterator[bytes]:
    assert proc.stdin is not None and proc.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def feed() -> None:
        with contextlib.suppress(ConnectionError):
            proc.stdin.write(body)  # type: ignore[union-attr]
            await proc.stdin.drain()  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]

    feeder = asyncio.ensure_future(feed())
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break  # over the time limit: the client sees a truncated pack and retries
            try:
                chunk = await asyncio.wait_for(proc.stdout.read(65536), remaining)
            except TimeoutError:
                break
            if not chunk:
                break
            yield chunk
    finally:
        # Also reached when the client disconnects (the generator is closed): the git
        # process must not outlive its request.
        feeder.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        gate.release()


@router.api_route("/{repo}.git/git-receive-pack", methods=["GET", "POST"], include_in_schema=False)
@router.api_route("/live/{repo}.git/git-receive-pack", methods=["GET", "POST"], include_in_schema=False)
async def receive_pack(repo: str, request: Request) -> Response:
    await run_in_threadpool(_visible_repository, request, repo)
    raise _refuse_push()


@router.api_route("/{repo}.git/{path:path}", methods=["GET", "POST", "PUT", "PROPFIND"], include_in_schema=False)
@router.api_route("/live/{repo}.git/{path:path}", methods=["GET", "POST", "PUT", "PROPFIND"], include_in_schema=False)
async def dumb_http(repo: str, path: str, request: Request) -> Response:
    await run_in_threadpool(_visible_repository, request, repo)
    raise HTTPProblem(403, "dumb-http-refused", "Dumb HTTP refused", "only smart HTTP (git-upload-pack) is served")


def _decode(encoding: str | None, body: bytes, limit: int) -> bytes:
    if encoding in (None, "", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise HTTPProblem(
            415, "unsupported-media-type", "Unsupported media type", f"unsupported Content-Encoding {encoding!r}"
        )
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise HTTPProblem(400, "malformed-request", "Malformed request", "the gzip body is corrupt") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise HTTPProblem(
            413,
            "payload-too-large",
            "Payload too large",
            f"the inflated request is larger than {limit} bytes",
            limit=limit,
        )
    return out


def _pkt_line(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data

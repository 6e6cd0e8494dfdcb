"""Every node answers every URL (issue 23, ADR 0015): a request for a repository that another
node owns is forwarded to that node, and its answer streamed back.

One pure ASGI layer, the outermost, so that a forwarded request costs this node nothing of its
own app (no auth, no rate limit, no route matching): the owner does all of that, as if the
client had come straight to it. What it does, per request:

- A `Gitstore-Forwarded` header is checked first (gitstore.cluster.signing). A good one means
  another node forwarded this request: it is answered here or refused with 421, never forwarded
  again, and the caller's address is the one the header names. Any other is dropped and the
  request treated as from outside: a forged header buys nothing.
- The path names a repository (`/repos/<repo>...`, `/git/<repo>.git/...`,
  `/git/live/<repo>.git/...`, `/ui/repos/<repo>...`)? Its route says who owns it. This node: the
  app answers. Another node: the request is streamed there (api.proxying) with a fresh signature,
  unless this node holds an in-sync replica that answers it (a live read of an entity, a clone
  of the public copy: api.replica_reads).
- The owner answers 421 (its route is newer than ours: the repository moved): the route is
  refreshed and the request sent once more, to the new owner or to this node's app. A second 421
  is answered 503 with Retry-After: a stale route costs one retry, never a wrong answer.
- The owner does not answer (down, or its heartbeat stopped): 503 naming the repository and the
  node, with Retry-After. Other nodes' repositories are not affected.
- `POST /repos`: the control plane places the new repository on the least-loaded node, and the
  request goes there (or to this node's app); if the owner refuses it, the placement is forgotten.
  `GET /repos` is never forwarded: every node lists every repository (api.routers.repos).

Forwarded, not redirected: a 307 costs the client a second round trip and a second connection,
git and browsers drop `Authorization` on a redirect to another host, and an EventSource or a
git clone would have to learn each node's address; `make cluster-bench` measures both.
"""

from __future__ import annotations

import logging
import re
from math import ceil
from typing import Protocol

import aiohttp
import anyio
import orjson
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from api import proxying
from api.auth import current_principal, require_admin_to_create
from api.body import timed_out, too_large
from api.problems import HTTPProblem, gitstore_error, problem
from api.replica_reads import answered_by_replica, cloned_from_replica
from api.schemas import RepoCreate
from gitstore import errors
from gitstore.cluster.api import HEADER, LIVENESS_SECONDS, Forwarded, forwarded_header, verify_forwarded

__all__ = ["FORWARDED_BY", "Cluster", "Forwarding", "install", "repository_of"]

log = logging.getLogger("gitstore.api")

_HEADER = HEADER.lower().encode()
_REPOSITORY_PATH = re.compile(r"/(?:ui/)?repos/([^/]+)(?:/|$)|/git/(?:live/([^/]+)|([^/]+))\.git(?:/|$)")
#: What a forwarded request's scope carries: the node that sent it (gitstore.cluster.signing.Forwarded).
FORWARDED_BY = "gitstore.forwarded"


class Route(Protocol):
    @property
    def owner(self) -> str: ...
    @property
    def owner_url(self) -> str: ...
    @property
    def owner_alive(self) -> bool: ...


class Routes(Protocol):
    def cached(self, repo: str) -> tuple[bool, Route | None]: ...
    def route(self, repo: str) -> Route | None: ...
    def refresh(self, repo: str) -> Route | None: ...


class Placement(Protocol):
    def forget(self, repo: str, *, owner: str | None = None) -> None: ...


class Cluster(Protocol):
    """What forwarding needs of the running node (gitstore.cluster.ClusterNode)."""

    @property
    def name(self) -> str: ...
    @property
    def secret(self) -> bytes: ...
    @property
    def routes(self) -> Routes: ...
    @property
    def plane(self) -> Placement: ...
    def place(self, name: str, description: str = "", replication_factor: int | None = None) -> Route: ...


def repository_of(path: str) -> str | None:
    """The repository a path names, if it names one."""
    match = _REPOSITORY_PATH.match(path)
    if match is None:
        return None
    return match.group(1) or match.group(2) or match.group(3)


def install(app: ASGIApp) -> None:
    """The outermost layer of `app` (call it after every other `add_middleware`)."""
    app.add_middleware(Forwarding)  # type: ignore[attr-defined]


class Forwarding:
    """Forward what another node owns; see the module's docstring. `cluster` is for a test or an
    embedding that brings its own; by default it is the app's `state.cluster` (None: embedded)."""

    def __init__(self, app: ASGIApp, cluster: Cluster | None = None) -> None:
        self.app = app
        self.cluster = cluster
        self._session: aiohttp.ClientSession | None = None
        self._bases: dict[str, URL] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, self._closing(send))
        cluster = self.cluster or getattr(scope["app"].state, "cluster", None)
        if scope["type"] != "http" or cluster is None:
            return await self.app(scope, receive, send)
        forwarded = _accept_signature(cluster, scope)
        path = scope["path"]
        repo = repository_of(path)
        if repo is None:
            if path == "/repos" and scope["method"] == "POST" and forwarded is None:
                return await self._create(cluster, scope, receive, send)
            return await self.app(scope, receive, send)
        known, route = cluster.routes.cached(repo)
        if not known:  # a query to PostgreSQL: not on the event loop
            try:
                route = await run_in_threadpool(cluster.routes.route, repo)
            except errors.GitstoreError as exc:  # the control plane is away: local repositories still serve
                return await self._local_or_problem(scope, receive, send, repo, exc)
        if route is None or route.owner == cluster.name or _dot_segments(path):
            return await self.app(scope, receive, send)
        if forwarded is not None:
            return await self._misdirected(cluster, repo, scope, receive, send)
        if await answered_by_replica(self.app, cluster, repo, scope, send):  # an in-sync replica's live read
            return
        if await cloned_from_replica(self.app, cluster, repo, scope, receive, send):  # or its public copy
            return
        await self._forward(cluster, repo, route, scope, receive, send)

    async def _forward(
        self, cluster: Cluster, repo: str, route: Route, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = proxying.Body(receive, scope["app"].state.settings.max_body_bytes, proxying.declared_length(scope))
        current: Route | None = route
        for attempt in (1, 2):
            if current is not None and not current.owner_alive:  # it may be back, or moved
                current = await run_in_threadpool(cluster.routes.refresh, repo)
            if current is None or current.owner == cluster.name:
                return await self.app(scope, body.replay(), send)
            if not current.owner_alive:
                return await _answer(scope, receive, send, _owner_unavailable(repo, current.owner))
            try:
                answer = await self._send(cluster, current, scope, body)
            except proxying.ClientGone:
                return
            except proxying.SendFailed as exc:
                why = "is not answering"  # it died or dropped the connection before answering
                if proxying.timed_out(exc) and not proxying.never_reached(exc):
                    why = "did not answer in time (a write may or may not have happened)"
                return await _answer(scope, receive, send, _owner_unavailable(repo, current.owner, why))
            if answer.status != 421:
                try:
                    return await proxying.relay(answer, scope["method"], receive, send)
                finally:
                    proxying.close_quietly(answer)
            proxying.close_quietly(answer)
            if attempt == 2 or not body.replayable:
                break
            current = await run_in_threadpool(cluster.routes.refresh, repo)
        await _answer(scope, receive, send, _still_moving(repo))

    async def _send(self, cluster: Cluster, route: Route, scope: Scope, body: proxying.Body) -> aiohttp.ClientResponse:
        base = self._bases.get(route.owner_url)
        if base is None:
            base = self._bases[route.owner_url] = URL(route.owner_url)
        raw_path, _ = proxying.raw_target(scope)  # sent on as it came: the signature covers it
        client_host = scope["client"][0] if scope.get("client") else ""
        signature = forwarded_header(cluster.secret, cluster.name, scope["method"], raw_path, client_host)
        return await proxying.forward_to(self._session_for(scope), base, scope, body, (HEADER, signature))

    async def _misdirected(self, cluster: Cluster, repo: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Another node sent this here, and our cached route says it is not ours: the cache may be
        the stale one, so ask the control plane before refusing."""
        route = await run_in_threadpool(cluster.routes.refresh, repo)
        if route is None or route.owner == cluster.name:
            return await self.app(scope, receive, send)
        detail = f"repository {repo} does not live on node {cluster.name}"
        refusal = problem(
            421,
            "misdirected",
            "Misdirected request",
            detail,
            headers={"Retry-After": "0"},
            name=repo,
            node=cluster.name,
        )
        await refusal(scope, receive, send)

    async def _create(self, cluster: Cluster, scope: Scope, receive: Receive, send: Send) -> None:
        """`POST /repos`: placed by the control plane, created by the node it picks."""
        settings = scope["app"].state.settings
        body = proxying.Body(receive, settings.max_body_bytes, proxying.declared_length(scope))
        if not body.replayable:  # declared too large: the app refuses it without reading it
            return await self.app(scope, receive, send)
        try:
            with anyio.fail_after(settings.body_timeout):
                payload = b"".join([chunk async for chunk in body.chunks()])
        except proxying.ClientGone:
            return
        except TimeoutError:
            return await _answer(scope, receive, send, timed_out(settings.body_timeout))
        if not body.replayable:
            return await _answer(scope, receive, send, too_large(settings.max_body_bytes))
        wanted = _wanted(payload)
        if wanted is None:  # not a valid request: the app refuses it as it refuses any other
            return await self.app(scope, body.replay(), send)
        try:
            await run_in_threadpool(_may_create, Request(scope), wanted.name)
            route = await run_in_threadpool(cluster.place, wanted.name, wanted.description, wanted.replication_factor)
        except (HTTPProblem, errors.GitstoreError) as exc:
            return await _answer(scope, receive, send, exc)
        created = _Status(send)
        try:
            if route.owner == cluster.name:
                await self.app(scope, body.replay(), created)
            else:
                await self._forward(cluster, wanted.name, route, scope, body.replay(), created)
        finally:
            if created.status is None or created.status >= 400:
                await run_in_threadpool(lambda: cluster.plane.forget(wanted.name, owner=route.owner))

    async def _local_or_problem(
        self, scope: Scope, receive: Receive, send: Send, repo: str, exc: errors.GitstoreError
    ) -> None:
        store = getattr(scope["app"].state, "store", None)
        if store is not None and await run_in_threadpool(_is_local, store, repo):
            return await self.app(scope, receive, send)
        await _answer(scope, receive, send, exc)

    def _session_for(self, scope: Scope) -> aiohttp.ClientSession:
        if self._session is None:  # made on the event loop that uses it, as aiohttp requires
            self._session = proxying.new_session(scope["app"].state.settings.upload_pack_timeout)
        return self._session

    def _closing(self, send: Send) -> Send:
        """The lifespan's `send`, which closes the pooled connections before the app reports
        that it has shut down."""

        async def closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and self._session is not None:
                await self._session.close()
                self._session = None
            await send(message)

        return closing


def _accept_signature(cluster: Cluster, scope: Scope) -> Forwarded | None:
    """Check and take off the request's forwarding header: a good one is noted in the scope and
    the caller's address becomes the one it names; a bad one is just dropped."""
    headers = scope["headers"]
    if not any(key == _HEADER for key, _ in headers):
        return None
    values = [v for k, v in headers if k == _HEADER]
    scope["headers"] = [(k, v) for k, v in headers if k != _HEADER]
    raw_path = scope.get("raw_path") or scope["path"].encode()
    forwarded = None
    if len(values) == 1:
        forwarded = verify_forwarded(cluster.secret, values[0].decode("latin-1"), scope["method"], raw_path)
    if forwarded is None:
        log.info("dropped a %s header that does not verify on %s %s", HEADER, scope["method"], scope["path"])
        return None
    scope[FORWARDED_BY] = forwarded
    scope["client"] = (forwarded.client, 0) if forwarded.client else None
    return forwarded


def _dot_segments(path: str) -> bool:
    # URL libraries resolve `.` and `..`, so the owner could see another path than the one
    # routed here: such a path is not forwarded (no route of the app matches it anyway).
    return "/./" in path or "/../" in path or path.endswith(("/.", "/.."))


def _wanted(payload: bytes) -> RepoCreate | None:
    try:
        return RepoCreate.model_validate(orjson.loads(payload))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _may_create(request: Request, name: str) -> None:
    # Asked here too, before a placement: a caller who may not create leaves no row behind.
    require_admin_to_create(current_principal(request), name)


def _is_local(store: object, repo: str) -> bool:
    try:
        store.repository(repo)  # type: ignore[attr-defined]
    except errors.GitstoreError:
        return False
    return True


class _Status:
    """A `send` that notes the status of the answer it passes on."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


def _owner_unavailable(repo: str, node: str, why: str = "is not answering") -> Exception:
    return errors.OwnerUnavailable(
        f"repository {repo} lives on node {node}, which {why}",
        name=repo,
        node=node,
        retry_after=ceil(LIVENESS_SECONDS),  # a node that comes back is seen within a heartbeat window
    )


def _still_moving(repo: str) -> Exception:
    return errors.NotOwner(f"repository {repo} is moving between nodes; try again", name=repo)


async def _answer(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    response: Response
    if isinstance(exc, HTTPProblem):
        response = problem(exc.status, exc.kind, exc.title, exc.detail, headers=exc.headers, **exc.extra)
    else:
        assert isinstance(exc, errors.GitstoreError)
        response = await gitstore_error(Request(scope), exc)
    await response(scope, receive, send)

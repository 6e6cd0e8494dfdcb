"""/admin/cluster: the cluster as the control plane has it, moves and drains (cluster mode, issue
23, ADR 0015), an operator's promotions (issue 24, ADR 0016); and /internal/cluster, the calls
the nodes make to each other for them.

Any node answers the admin routes. A move runs on the node the repository moves to (it pulls),
so a request to move names that node and is passed to it; a drain runs on the node drained (the
source of each of its moves). Each keeps its status on that node, and asking any node for it
asks that one. Between nodes the calls are signed (api.nodes), not made with the caller's token:
the admin right was checked where the request came in.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api import git_http
from api.auth import require_everywhere
from api.body import JsonBody, json_body, validate_body
from api.nodes import a_node
from api.problems import HTTPProblem
from api.schemas import (
    ClusterStatus,
    DrainCreate,
    DrainOut,
    MoveCreate,
    MoveOut,
    NodeList,
    NodeOut,
    PromotionCreate,
    PromotionOut,
    RouteOut,
)
from gitstore.access.api import Principal
from gitstore.cluster.api import (
    ClusterNode,
    Drains,
    Moves,
    Peer,
    digest_of,
    peer_of,
    take_snapshot,
    write_snapshot_tar,
)
from gitstore.errors import MoveInProgress, NotOwner
from gitstore.storage.api import ref_list

__all__ = ["install", "internal", "router"]

router = APIRouter(prefix="/admin/cluster", tags=["cluster"])
internal = APIRouter(prefix="/internal/cluster", include_in_schema=False)

AdminEverywhere = Annotated[Principal, Depends(require_everywhere("admin"))]
FromANode = Annotated[str, Depends(a_node)]


def install(app: FastAPI) -> None:
    """The routes, and (in cluster mode) the node's moves and drain once the node runs: moves
    to this node that a stop left half done are undone as it starts."""
    app.include_router(router)
    app.include_router(internal)
    app.include_router(git_http.nodes)
    app.state.moves = app.state.drains = None
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            node: ClusterNode | None = app.state.cluster
            if node is not None:
                app.state.moves = Moves(node)
                app.state.drains = Drains(node)
                await run_in_threadpool(app.state.moves.recover)
            try:
                yield
            finally:
                if app.state.moves is not None:
                    await run_in_threadpool(app.state.moves.stop)

    app.router.lifespan_context = lifespan


def _node(request: Request) -> ClusterNode:
    node: ClusterNode | None = request.app.state.cluster
    if node is None:
        raise HTTPProblem(404, "not-a-cluster", "Not a cluster", "this server runs alone (no GITSTORE_CLUSTER_DSN)")
    return node


# -- what the control plane says --------------------------------------------------------------------


@router.get("", response_model=ClusterStatus, summary="Every node and where every repository lives")
def cluster_status(_: AdminEverywhere, request: Request) -> ClusterStatus:
    node = _node(request)
    routes = node.plane.routes()
    return ClusterStatus(
        node=node.name,
        nodes=_nodes(node, routes),
        repositories=[
            RouteOut(
                repository=r.repo,
                owner=r.owner,
                epoch=r.epoch,
                state=r.state,
                move_target=r.move_target,
                owner_alive=r.owner_alive,
            )
            for r in routes
        ],
    )


@router.get("/nodes", response_model=NodeList, summary="The nodes: state, heartbeat, repositories owned")
def cluster_nodes(_: AdminEverywhere, request: Request) -> NodeList:
    node = _node(request)
    return NodeList(items=_nodes(node, node.plane.routes()))


def _nodes(node: ClusterNode, routes: list[Any]) -> list[NodeOut]:
    owned = Counter(r.owner for r in routes)
    return [
        NodeOut(
            name=n.name,
            url=n.url,
            state=n.state,
            heartbeat_at=n.heartbeat_at,
            alive=n.alive,
            repositories=owned[n.name],
        )
        for n in node.plane.nodes()
    ]


# -- moves -----------------------------------------------------------------------------------------


@router.post(
    "/moves",
    response_model=MoveOut,
    status_code=202,
    summary="Move a repository to another node, while writes go on (runs on that node)",
    openapi_extra=json_body(MoveCreate),
)
def start_move(_: AdminEverywhere, request: Request, response: Response, body: JsonBody) -> Any:
    wanted = validate_body(MoveCreate, body)
    here = _moves(request).start
    location = f"/admin/cluster/moves/{wanted.repository}?node={wanted.node}"
    body = {"repository": wanted.repository}
    return _on(request, response, location, wanted.node, lambda: here(wanted.repository).as_json(), "/moves", body)


@router.get("/moves/{repo}", response_model=MoveOut, summary="A move's progress (asked of the node it runs on)")
def move_status(
    _: AdminEverywhere,
    request: Request,
    repo: str,
    node: Annotated[str | None, Query(description="the node the repository moves to (default: this one)")] = None,
) -> Any:
    here = _node(request)
    if node is not None and node != here.name:
        return _relay(_peer(here, node, request), "GET", f"/internal/cluster/moves/{repo}")
    return _move_of(request, repo)


@internal.post("/moves", status_code=202)
def start_move_here(_: FromANode, request: Request, body: JsonBody) -> dict[str, Any]:
    wanted = validate_body(MoveCreate, {**(body or {}), "node": _node(request).name})
    return _moves(request).start(wanted.repository).as_json()


@internal.get("/moves/{repo}")
def move_status_here(_: FromANode, request: Request, repo: str) -> dict[str, Any]:
    return _move_of(request, repo)


def _move_of(request: Request, repo: str) -> dict[str, Any]:
    found = _moves(request).status(repo)
    if found is None:
        raise HTTPProblem(404, "no-such-move", "No such move", f"node {_node(request).name} ran no move of {repo!r}")
    return found.as_json()


def _moves(request: Request) -> Moves:
    _node(request)
    return request.app.state.moves  # type: ignore[no-any-return]


# -- drains ----------------------------------------------------------------------------------------


@router.post(
    "/drains",
    response_model=DrainOut,
    status_code=202,
    summary="Move every repository off a node (runs on that node)",
    openapi_extra=json_body(DrainCreate),
)
def start_drain(_: AdminEverywhere, request: Request, response: Response, body: JsonBody) -> Any:
    wanted = validate_body(DrainCreate, body)
    here = _drains(request).start
    return _on(
        request, response, f"/admin/cluster/drains/{wanted.node}", wanted.node, lambda: here().as_json(), "/drains", {}
    )


@router.get("/drains/{name}", response_model=DrainOut, summary="A drain's progress (asked of the node drained)")
def drain_status(_: AdminEverywhere, request: Request, name: str) -> Any:
    node = _node(request)
    if name != node.name:
        return _relay(_peer(node, name, request), "GET", "/internal/cluster/drains")
    return _drain_here(request)


@internal.post("/drains", status_code=202)
def start_drain_here(_: FromANode, request: Request) -> dict[str, Any]:
    return _drains(request).start().as_json()


@internal.get("/drains")
def drain_status_here(_: FromANode, request: Request) -> dict[str, Any]:
    return _drain_here(request)


def _drain_here(request: Request) -> dict[str, Any]:
    found = _drains(request).status()
    if found is None:
        raise HTTPProblem(404, "no-such-drain", "No such drain", f"node {_node(request).name} was never drained")
    return found.as_json()


def _drains(request: Request) -> Drains:
    _node(request)
    return request.app.state.drains  # type: ignore[no-any-return]


# -- promotions ------------------------------------------------------------------------------------


@router.post(
    "/promotions",
    response_model=PromotionOut,
    summary="Make a node's in-sync replica of a repository its owner now (runs on that node)",
    openapi_extra=json_body(PromotionCreate),
)
def promote(_: AdminEverywhere, request: Request, response: Response, body: JsonBody) -> Any:
    wanted = validate_body(PromotionCreate, body)
    here = functools.partial(_take_over, request, wanted.repository)
    return _on(request, response, "/admin/cluster", wanted.node, here, "/promotions", {"repository": wanted.repository})


@internal.post("/promotions")
def promote_here(_: FromANode, request: Request, body: JsonBody) -> dict[str, Any]:
    wanted = validate_body(PromotionCreate, {**(body or {}), "node": _node(request).name})
    return _take_over(request, wanted.repository)


def _take_over(request: Request, repo: str) -> dict[str, Any]:
    node = _node(request)
    started = time.monotonic()
    epoch = node.replication.take_over(repo)
    return {"repository": repo, "owner": node.name, "epoch": epoch, "seconds": round(time.monotonic() - started, 3)}


# -- what the owner does for a move ---------------------------------------------------------------


@internal.post("/repositories/{repo}/snapshot")
def snapshot(by: FromANode, request: Request, repo: str, seal: bool = False) -> FileResponse:
    """The repository's refs and service state for the node it moves to; sealed only once the
    control plane says it is fenced for that node (gitstore.cluster.snapshots)."""
    node = _node(request)
    route = node.plane.route(repo)
    wanted = "fenced" if seal else "moving"
    if route is None or route.owner != node.name or route.move_target != by or route.state != wanted:
        raise MoveInProgress(f"repository {repo!r} is not {wanted} from node {node.name} to node {by}", name=repo)
    folder = Path(tempfile.mkdtemp(prefix=f".snapshot-{repo}-", dir=node.store.data_dir))
    try:
        taken = take_snapshot(node.store.repository(repo), folder / "taken", seal=seal)
        with open(folder / "snapshot.tar", "wb") as out:
            write_snapshot_tar(taken, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        folder / "snapshot.tar",
        media_type="application/x-tar",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@internal.post("/repositories/{repo}/gave-up")
def gave_up(by: FromANode, request: Request, repo: str) -> dict[str, Any]:
    """The move flipped the route: stop guarding the repository and set its copy aside, saying
    which refs it held (the sealed ones, since nothing moves a fenced repository's refs)."""
    node = _node(request)
    route = node.plane.route(repo)
    if route is None or route.owner == node.name:
        raise NotOwner(f"repository {repo!r} still lives on node {node.name}", name=repo, node=node.name)
    path = node.store.data_dir / f"{repo}.git"
    refs = ref_list(path) if path.is_dir() else None
    node.gave_up(repo)
    return {"digest": digest_of(refs) if refs is not None else None, "refs": len(refs or [])}


# -- passing a request on to the node that runs it ---------------------------------------------------


def _on(
    request: Request, response: Response, location: str, name: str, here: Callable[[], Any], path: str, body: object
) -> Any:
    """Start what node `name` runs (its status at `location`): here, or by a signed call to its
    internal route `path` with `body`, its answer passed on."""
    node = _node(request)
    response.headers["Location"] = location
    if name == node.name:
        return here()
    relayed = _relay(_peer(node, name, request), "POST", "/internal/cluster" + path, body)
    if relayed.status_code < 300:
        relayed.headers["Location"] = location
    return relayed


def _peer(node: ClusterNode, name: str, request: Request) -> Peer:
    return peer_of(node, name, alive=True, client=request.client.host if request.client else "")


def _relay(peer: Peer, method: str, path: str, body: object | None = None) -> Response:
    """The other node's answer, as it gave it (a problem included)."""
    answer = peer.call(method, path, body)
    media = "application/json" if answer.status < 400 else "application/problem+json"
    return Response(orjson.dumps(answer.body), status_code=answer.status, media_type=media)

"""/internal/cluster/replicas: what the nodes ask each other to keep a repository's replicas in
sync (issue 24, ADR 0016). Signed between nodes (api.nodes), never a client's call.

    POST {repo}/records   a round from the owner: raw journal record, Gitstore-Epoch and
                          Gitstore-Seq headers; 200 once it is durable here, 409 if this copy
                          cannot take it (a gap, an older epoch, no copy in sync), 507 if the
                          disk refused it
    POST {repo}/relay     the owner's relay file (webhook subscriptions, sinks' cursors), whole:
                          a SQLite database; 200 once it is durable here, 409 as for a round
    POST {repo}/join      asked of the owner by a replica that copied it: seal, hand over, add
    POST {repo}/sealed    asked of that replica by the owner inside its seal: the refs to equal
"""

from __future__ import annotations

import base64
import binascii
import errno
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.body import JsonBody
from api.nodes import a_node
from api.problems import HTTPProblem
from gitstore.cluster.api import ClusterNode

__all__ = ["install", "replicas"]

replicas = APIRouter(prefix="/internal/cluster/replicas", include_in_schema=False)
FromANode = Annotated[str, Depends(a_node)]


def install(app: FastAPI) -> None:
    app.include_router(replicas)


def _node(request: Request) -> ClusterNode:
    node: ClusterNode | None = request.app.state.cluster
    if node is None:
        raise HTTPProblem(404, "not-a-cluster", "Not a cluster", "this server runs alone (no GITSTORE_CLUSTER_DSN)")
    return node


@replicas.post("/{repo}/records")
async def records(_: FromANode, request: Request, repo: str) -> JSONResponse:
    node = _node(request)
    try:
        epoch, seq = int(request.headers["gitstore-epoch"]), int(request.headers["gitstore-seq"])
    except (KeyError, ValueError):
        raise HTTPProblem(400, "bad-round", "Bad round", "Gitstore-Epoch and Gitstore-Seq are needed") from None
    record = await request.body()
    try:
        await run_in_threadpool(node.replication.receive, repo, epoch, seq, record)
    except OSError as exc:
        # A full disk (or a file size limit): the owner drops this replica before acknowledging.
        status = 507 if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else 500
        raise HTTPProblem(status, "replica-write-failed", "The replica could not write", str(exc)) from None
    return JSONResponse({"seq": seq})


@replicas.post("/{repo}/relay")
async def relay(_: FromANode, request: Request, repo: str) -> JSONResponse:
    node = _node(request)
    try:
        epoch = int(request.headers["gitstore-epoch"])
    except (KeyError, ValueError):
        raise HTTPProblem(400, "bad-relay-state", "Bad relay state", "Gitstore-Epoch is needed") from None
    data = await request.body()
    try:
        await run_in_threadpool(node.replication.relay.receive, repo, epoch, data)
    except ValueError as exc:
        raise HTTPProblem(400, "bad-relay-state", "Bad relay state", str(exc)) from None
    except OSError as exc:
        status = 507 if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else 500
        raise HTTPProblem(status, "replica-write-failed", "The replica could not write", str(exc)) from None
    return JSONResponse({"bytes": len(data)})


@replicas.post("/{repo}/join")
def join(_: FromANode, request: Request, repo: str, body: JsonBody) -> dict[str, Any]:
    replica = str((body or {}).get("node", ""))
    return {"refs": _node(request).replication.seal_for(repo, replica)}


@replicas.post("/{repo}/sealed")
def sealed(_: FromANode, request: Request, repo: str, body: JsonBody) -> dict[str, Any]:
    wanted = body or {}
    try:
        refs = [(str(name), str(target)) for name, target in wanted["refs"]]
        owner, epoch, seq = str(wanted["owner"]), int(wanted["epoch"]), int(wanted["seq"])
        objects = base64.b64decode(wanted["objects"], validate=True)
        relay = None if wanted.get("relay") is None else base64.b64decode(wanted["relay"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise HTTPProblem(400, "bad-seal", "Bad seal", "owner, refs, epoch, seq and objects are needed") from None
    _node(request).replication.sealed(repo, owner, refs, epoch, seq, objects, relay)
    return {"refs": len(refs)}

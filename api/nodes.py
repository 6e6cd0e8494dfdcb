"""Requests another node of the cluster makes (cluster mode, issue 23), and how this node knows
them: the inter-node signature (gitstore.cluster.signing), keyed by the cluster's secret.

- An internal call (`/internal/cluster/...`) carries it as the `Gitstore-Forwarded` header, which
  api.forwarding checks and takes off every request before anything else; only a request it
  verified reaches an internal route (`a_node`), any other is refused 403.
- A node's git fetch (a move copying a repository) carries it as the Basic password
  `node:<name>:<ts>:<sig>`, made for the one repository it reads. It is accepted on the full
  repository's remote only, which only reads: `fetching_node`.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from api.forwarding import FORWARDED_BY
from api.problems import HTTPProblem
from gitstore.cluster.api import is_git_password, verify_git_password

__all__ = ["a_node", "fetching_node"]


async def a_node(request: Request) -> str:
    """A dependency: the node that signed this request; anyone else is refused."""
    forwarded = request.scope.get(FORWARDED_BY)
    if forwarded is None:
        raise HTTPProblem(
            403, "nodes-only", "Nodes only", "this is a call between the nodes of a cluster, signed by one of them"
        )
    return forwarded.node  # type: ignore[no-any-return]


def fetching_node(request: Request, repo: str) -> str | None:
    """The node whose git password for `repo` this request carries, if it carries a good one."""
    cluster = getattr(request.app.state, "cluster", None)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if cluster is None or scheme.lower() != "basic":
        return None
    try:
        password = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not is_git_password(password):
        return None
    return verify_git_password(cluster.secret, password, repo)

"""The cluster package's public surface (issue 23): PostgreSQL as the control plane, the running
node, fencing by epoch, credentials shared by every node, the inter-node signature.

Nothing here imports psycopg at import time: the embedded mode (no GITSTORE_CLUSTER_DSN) never
loads it. The modules that talk to PostgreSQL import it inside their functions.
"""

from gitstore.cluster.control import LIVENESS_SECONDS, NODE_STATES, ControlPlane, Node, Route, describe_dsn
from gitstore.cluster.credentials import ClusterCredentials
from gitstore.cluster.fencing import Fences
from gitstore.cluster.node import SET_ASIDE, ClusterNode
from gitstore.cluster.notify import Listener
from gitstore.cluster.routes import RouteCache
from gitstore.cluster.schema import CREDENTIALS_CHANNEL, MIGRATIONS, ROUTES_CHANNEL, migrate
from gitstore.cluster.signing import (
    GIT_PASSWORD_MAX_AGE,
    HEADER,
    MAX_AGE,
    Forwarded,
    forwarded_header,
    git_password,
    is_git_password,
    verify_forwarded,
    verify_git_password,
)

__all__ = [
    "CREDENTIALS_CHANNEL",
    "GIT_PASSWORD_MAX_AGE",
    "HEADER",
    "LIVENESS_SECONDS",
    "MAX_AGE",
    "MIGRATIONS",
    "NODE_STATES",
    "ROUTES_CHANNEL",
    "SET_ASIDE",
    "ClusterCredentials",
    "ClusterNode",
    "ControlPlane",
    "Fences",
    "Forwarded",
    "Listener",
    "Node",
    "Route",
    "RouteCache",
    "describe_dsn",
    "forwarded_header",
    "git_password",
    "is_git_password",
    "migrate",
    "verify_forwarded",
    "verify_git_password",
]

"""The cluster package's public surface (issue 23): PostgreSQL as the control plane, the running
node, fencing by epoch, credentials shared by every node.

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

__all__ = [
    "CREDENTIALS_CHANNEL",
    "LIVENESS_SECONDS",
    "MIGRATIONS",
    "NODE_STATES",
    "ROUTES_CHANNEL",
    "SET_ASIDE",
    "ClusterCredentials",
    "ClusterNode",
    "ControlPlane",
    "Fences",
    "Listener",
    "Node",
    "Route",
    "RouteCache",
    "describe_dsn",
    "migrate",
]

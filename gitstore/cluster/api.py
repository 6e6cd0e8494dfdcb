"""The cluster package's public surface (issue 23): PostgreSQL as the control plane, the running
node, fencing by epoch, credentials shared by every node, the inter-node signature.

Nothing here imports psycopg at import time: the embedded mode (no GITSTORE_CLUSTER_DSN) never
loads it. The modules that talk to PostgreSQL import it inside their functions.
"""

from gitstore.cluster.backup_part import ClusterPart
from gitstore.cluster.control import LIVENESS_SECONDS, NODE_STATES, ControlPlane, Node, Route, describe_dsn
from gitstore.cluster.credentials import ClusterCredentials
from gitstore.cluster.draining import Drains, DrainStatus, least_loaded, wait_for_move
from gitstore.cluster.fencing import Fences
from gitstore.cluster.moves import Moves, MoveSettings, MoveStatus, digest_of
from gitstore.cluster.node import SET_ASIDE, ClusterNode
from gitstore.cluster.notify import Listener
from gitstore.cluster.peers import Answer, Peer, PeerSource, peer_of
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
from gitstore.cluster.snapshots import Snapshot, read_snapshot, take_snapshot, write_snapshot_tar
from gitstore.cluster.staging import CopyRound, StagingCopy, staging_folders

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
    "Answer",
    "ClusterCredentials",
    "ClusterNode",
    "ClusterPart",
    "ControlPlane",
    "CopyRound",
    "DrainStatus",
    "Drains",
    "Fences",
    "Forwarded",
    "Listener",
    "MoveSettings",
    "MoveStatus",
    "Moves",
    "Node",
    "Peer",
    "PeerSource",
    "Route",
    "RouteCache",
    "Snapshot",
    "StagingCopy",
    "describe_dsn",
    "digest_of",
    "forwarded_header",
    "git_password",
    "is_git_password",
    "least_loaded",
    "migrate",
    "peer_of",
    "read_snapshot",
    "staging_folders",
    "take_snapshot",
    "verify_forwarded",
    "verify_git_password",
    "wait_for_move",
    "write_snapshot_tar",
]

"""A repository's replicas in the control plane (issue 24, ADR 0016): where they are placed, which
of them are in sync, and a promotion that makes one of those the owner.

`repositories.owner` at `repositories.epoch` stays the one answer to "who may write". Beside it,
`repository_replicas` lists the other nodes holding a copy; a row `in_sync` holds every
acknowledged write, because the owner ships each round to every in-sync replica before its refs
move, and takes a replica out of the set (a compare-and-swap on owner and epoch) before it
acknowledges anything that replica lacks. So only an in-sync replica may be promoted (GitLab's
Praefect promoted a replica by "generation" and lost acknowledged writes: their MR 3689).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitstore.environment import seconds, whole_number
from gitstore.errors import ReplicaBehind, ReplicationFactorTooHigh, ReplicationFailed

if TYPE_CHECKING:
    import psycopg

    from gitstore.cluster.control import ControlPlane

__all__ = [
    "FAILOVER_SECONDS",
    "Duty",
    "default_factor",
    "drop_from_in_sync",
    "join_in_sync",
    "place_replicas",
    "promote",
    "replica_duties",
    "replicas_of",
    "short_of_replicas",
]

#: A primary whose heartbeat is older than this (PostgreSQL's clock) is failed over.
FAILOVER_SECONDS = seconds("GITSTORE_FAILOVER_SECONDS", 3.0)

#: How long a replica's node may stay silent, out of the in-sync set, before its place goes to
#: another node (it is taken for gone for good; coming back later it is just a spare node).
REPLICA_LOST_SECONDS = seconds("GITSTORE_REPLICA_LOST_SECONDS", 600.0)
_PLACEMENT_LOCK = 0x7265_706C_6963_6100  # "replica": one placement of replicas at a time
_ACTIVE_ALIVE = "n.state = 'active' and n.heartbeat_at > now() - interval '5 seconds'"


def default_factor() -> int:
    """How many copies a new repository has in cluster mode: GITSTORE_REPLICATION_FACTOR, 2."""
    return whole_number("GITSTORE_REPLICATION_FACTOR", 2, minimum=1)


@dataclass(frozen=True, slots=True)
class Duty:
    """A repository this node holds a replica of, as the control plane has it."""

    repo: str
    owner: str
    owner_url: str
    epoch: int
    state: str
    in_sync: bool
    owner_silent: bool  # no heartbeat for FAILOVER_SECONDS, or down
    description: str


def place_replicas(plane: ControlPlane, repo: str, factor: int | None = None, *, strict: bool = False) -> list[str]:
    """Give `repo` replicas on distinct active, live nodes other than its owner, the least loaded
    first, until it has `factor` copies in all (None: the factor it has). `strict` (a factor the
    caller asked for): more copies than active nodes is ReplicationFactorTooHigh, and nothing
    changes; otherwise the factor is cut to the nodes there are. The nodes added."""

    def place(conn: psycopg.Connection[Any]) -> list[str]:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (_PLACEMENT_LOCK,))
            row = conn.execute(
                "select owner, replication_factor from repositories where name = %s for update", (repo,)
            ).fetchone()
            if row is None:
                return []
            owner, had = row
            wanted = had if factor is None else factor
            active = conn.execute(f"select count(*) from nodes n where {_ACTIVE_ALIVE}").fetchone()
            nodes = int(active[0]) if active else 0
            if wanted > nodes and strict:
                raise ReplicationFactorTooHigh(
                    f"repository {repo!r} cannot have {wanted} copies: the cluster has {nodes} active node(s)",
                    name=repo,
                    factor=wanted,
                    nodes=nodes,
                )
            if factor is not None:
                conn.execute("update repositories set replication_factor = %s where name = %s", (wanted, repo))
            have = conn.execute("select count(*) from repository_replicas where repository = %s", (repo,)).fetchone()
            missing = wanted - 1 - (int(have[0]) if have else 0)
            if missing <= 0:
                return []
            chosen = conn.execute(
                f"""select n.name from nodes n where {_ACTIVE_ALIVE} and n.name <> %s
                        and not exists (select 1 from repository_replicas s where s.repository = %s and s.node = n.name)
                    order by (select count(*) from repository_replicas s where s.node = n.name)
                        + (select count(*) from repositories r where r.owner = n.name), n.name
                    limit %s""",
                (owner, repo, missing),
            ).fetchall()
            names = [str(name) for (name,) in chosen]
            for name in names:
                conn.execute("insert into repository_replicas (repository, node) values (%s, %s)", (repo, name))
            return names

    return plane.run(place, retry=False)


def replicas_of(plane: ControlPlane, repo: str) -> dict[str, bool]:
    """`repo`'s replicas: node -> in sync."""
    rows = plane.run(
        lambda c: c.execute("select node, in_sync from repository_replicas where repository = %s", (repo,)).fetchall()
    )
    return {str(node): bool(in_sync) for node, in_sync in rows}


def drop_from_in_sync(plane: ControlPlane, repo: str, owner: str, epoch: int, nodes: list[str]) -> None:
    """Take `nodes` out of `repo`'s in-sync set, only while `owner` owns it at `epoch`. Raises
    ReplicationFailed if it does not (or PostgreSQL does not answer): the round that could not
    reach them must then not be acknowledged."""
    from gitstore.errors import ControlPlaneUnavailable

    def drop(conn: psycopg.Connection[Any]) -> bool:
        with conn.transaction():
            if not _held(conn, repo, owner, epoch):
                return False
            conn.execute(
                """update repository_replicas set in_sync = false, changed_at = now()
                    where repository = %s and node = any(%s)""",
                (repo, nodes),
            )
            return True

    try:
        dropped = plane.run(drop)
    except ControlPlaneUnavailable as exc:
        raise ReplicationFailed(
            f"replica(s) {', '.join(nodes)} of {repo!r} did not take the write, and {exc.detail}",
            name=repo,
            retry_after=1,
        ) from None
    if not dropped:
        raise ReplicationFailed(
            f"replica(s) {', '.join(nodes)} of {repo!r} did not take the write, and node {owner} no longer "
            f"owns it at epoch {epoch}",
            name=repo,
            retry_after=1,
        )


def join_in_sync(plane: ControlPlane, repo: str, owner: str, epoch: int, node: str) -> bool:
    """`node` joins `repo`'s in-sync set (its copy sealed equal to the owner's), only while
    `owner` owns it at `epoch` and `node` is one of its replicas. Whether it did."""

    def join(conn: psycopg.Connection[Any]) -> bool:
        with conn.transaction():
            if not _held(conn, repo, owner, epoch):
                return False
            return bool(
                conn.execute(
                    """update repository_replicas set in_sync = true, changed_at = now()
                        where repository = %s and node = %s""",
                    (repo, node),
                ).rowcount
            )

    return plane.run(join)


def promote(plane: ControlPlane, repo: str, node: str, epoch: int, *, forced: bool = False) -> int | None:
    """Make in-sync replica `node` the owner of `repo` at `epoch` + 1, if the owner still holds
    it at `epoch` and (unless `forced`, an operator's) has been silent for FAILOVER_SECONDS. The
    old owner becomes a replica out of sync. The new epoch, or None if another promotion (or
    the owner's return) won. Raises ReplicaBehind if `node` is not in the in-sync set."""

    def promotion(conn: psycopg.Connection[Any]) -> int | None:
        with conn.transaction():
            # The row lock first, the in-sync set in a statement of its own after it: under READ
            # COMMITTED a statement reads as of its start, even once it has waited for a lock, so
            # read in one, a drop the owner committed while this waited would go unseen (and the
            # round it then acknowledged be lost). Every change to the set holds this row's lock.
            row = conn.execute(
                f"""select r.owner, r.epoch, r.state,
                        n.state = 'down' or n.heartbeat_at < now() - interval '{FAILOVER_SECONDS} seconds'
                    from repositories r join nodes n on n.name = r.owner where r.name = %s for update of r""",
                (repo,),
            ).fetchone()
            if row is None:
                return None
            owner, current, state, silent = row
            found = conn.execute(
                "select in_sync from repository_replicas where repository = %s and node = %s", (repo, node)
            ).fetchone()
            in_sync = found is not None and bool(found[0])
            if not in_sync:
                raise ReplicaBehind(
                    f"node {node} is not in the in-sync set of {repo!r}: it may lack acknowledged writes",
                    name=repo,
                    node=node,
                )
            if current != epoch or state != "active" or owner == node or not (silent or forced):
                return None
            conn.execute(
                "update repositories set owner = %s, epoch = epoch + 1, updated_at = now() where name = %s",
                (node, repo),
            )
            conn.execute("delete from repository_replicas where repository = %s and node = %s", (repo, node))
            conn.execute(
                """insert into repository_replicas (repository, node, in_sync) values (%s, %s, false)
                    on conflict (repository, node) do update set in_sync = false, changed_at = now()""",
                (repo, owner),
            )
            return int(current) + 1

    return plane.run(promotion, retry=False)


def _held(conn: psycopg.Connection[Any], repo: str, owner: str, epoch: int) -> bool:
    """Whether `owner` owns `repo` at `epoch`, the row locked until the transaction ends."""
    return (
        conn.execute(
            "select 1 from repositories where name = %s and owner = %s and epoch = %s for update",
            (repo, owner, epoch),
        ).fetchone()
        is not None
    )


def replica_duties(plane: ControlPlane, node: str) -> list[Duty]:
    """Every repository `node` holds a replica of."""
    rows = plane.run(
        lambda c: c.execute(
            f"""select r.name, r.owner, n.url, r.epoch, r.state, s.in_sync,
                    n.state = 'down' or n.heartbeat_at < now() - interval '{FAILOVER_SECONDS} seconds',
                    r.description
                from repository_replicas s join repositories r on r.name = s.repository
                    join nodes n on n.name = r.owner
                where s.node = %s order by r.name""",
            (node,),
        ).fetchall()
    )
    return [Duty(*row) for row in rows]


def drop_lost_replicas(
    plane: ControlPlane, owner: str, silent_for: float = REPLICA_LOST_SECONDS
) -> list[tuple[str, str]]:
    """Forget the replicas of `owner`'s repositories held by nodes silent for `silent_for`
    seconds and out of the in-sync set, so that the next top-up places copies on live nodes:
    without it a node gone for good leaves its repositories on one disk for ever. An in-sync
    replica is kept however long it is away: it holds every acknowledged write, so it may still
    be promoted; the first write while it is away takes it out of the set. (repository, node)
    pairs dropped."""
    rows = plane.run(
        lambda c: c.execute(
            """delete from repository_replicas s using repositories r, nodes n
                where s.repository = r.name and r.owner = %s and r.state = 'active' and s.node = n.name
                    and not s.in_sync and n.heartbeat_at < now() - make_interval(secs => %s)
                returning s.repository, s.node""",
            (owner, silent_for),
        ).fetchall()
    )
    return [(str(repo), str(node)) for repo, node in rows]


def short_of_replicas(plane: ControlPlane, node: str) -> list[str]:
    """Repositories `node` owns that have fewer replicas than their factor asks for."""
    rows = plane.run(
        lambda c: c.execute(
            """select r.name from repositories r where r.owner = %s and r.state = 'active'
                and r.replication_factor - 1 > (select count(*) from repository_replicas s where s.repository = r.name)""",
            (node,),
        ).fetchall()
    )
    return [str(name) for (name,) in rows]

"""The control plane: PostgreSQL knows the nodes, where each repository lives, and at what epoch.

`ControlPlane(dsn)` applies the schema's migrations and keeps a pool of connections. Every
question goes to PostgreSQL itself (the authority): a cached answer is the route cache's job
(cluster.routes), and the fence check must never trust one. PostgreSQL's own clock decides who
is alive (a heartbeat younger than LIVENESS), so the nodes' clocks need not agree.

Any failure to reach PostgreSQL surfaces as ControlPlaneUnavailable, naming host:port (never the
password): a write fails closed on it, a read of a local repository does not ask.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from gitstore.errors import (
    ControlPlaneUnavailable,
    MoveInProgress,
    MoveToOwner,
    NodeDown,
    NodeNameClash,
    NoNodeAvailable,
    NotOwner,
    RepositoryExists,
    RepositoryNotFound,
    UnknownNode,
)
from gitstore.names import validate_repo_name

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["LIVENESS_SECONDS", "NODE_STATES", "Checked", "ControlPlane", "Node", "Route", "describe_dsn"]

T = TypeVar("T")

#: A node whose last heartbeat is older than this is not alive (nodes beat every second).
LIVENESS_SECONDS = 5.0
NODE_STATES = ("active", "draining", "down")

# One placement at a time, so two creates at once do not both pick the same least-loaded node.
_PLACEMENT_LOCK = 0x706C_6163_6500  # "place"
_ALIVE = f"(n.state <> 'down' and n.heartbeat_at > now() - interval '{LIVENESS_SECONDS} seconds')"
_ROUTE = f"""select r.name, r.owner, n.url, r.epoch, r.state, r.move_target, {_ALIVE}, r.description
    from repositories r join nodes n on n.name = r.owner"""
_NODE = f"select n.name, n.url, n.state, n.heartbeat_at, {_ALIVE} from nodes n"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    url: str
    state: str  # active, draining, down
    heartbeat_at: datetime
    alive: bool  # heartbeat within LIVENESS_SECONDS (by PostgreSQL's clock) and not down


@dataclass(frozen=True, slots=True)
class Checked:
    """What a passed fence check read besides: the in-sync replicas (node, URL), the factor."""

    in_sync: list[tuple[str, str]]
    factor: int


@dataclass(frozen=True, slots=True)
class Route:
    """Where a repository lives: its owner, the owner's URL, the epoch writes are fenced by."""

    repo: str
    owner: str
    owner_url: str
    epoch: int
    state: str  # active, moving, fenced
    move_target: str | None
    owner_alive: bool
    description: str = ""


class ControlPlane:
    """The cluster's tables in PostgreSQL at `dsn`, through a pool of connections."""

    def __init__(self, dsn: str, *, connect_timeout: float = 5.0, wait: float = 2.0, pool_size: int = 8) -> None:
        """Apply the migrations and open the pool. Raises ControlPlaneUnavailable (naming
        host:port) if PostgreSQL cannot be reached within `connect_timeout` seconds. `wait` is
        how long a question waits for a pooled connection before it is refused."""
        import psycopg
        from psycopg_pool import ConnectionPool

        from gitstore.cluster.schema import migrate

        self.where = describe_dsn(dsn)
        self._dsn = dsn
        self._timeout = connect_timeout
        self.incarnation: uuid.UUID | None = None  # this process's, once it joined
        self._error = psycopg.Error
        self._broken = psycopg.OperationalError
        try:
            with self.connect() as conn:
                migrate(conn)
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None
        self._pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs=self._connect_options(),
            timeout=wait,
            open=False,
            name="gitstore-control-plane",
            reconnect_timeout=0.0,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise self.unavailable(exc) from None

    def close(self) -> None:
        self._pool.close()

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own, outside the pool (LISTEN holds one for good)."""
        import psycopg

        return psycopg.connect(self._dsn, **self._connect_options())

    def run(self, work: Callable[[psycopg.Connection[Any]], T], *, retry: bool = True) -> T:
        """`work` with a pooled connection (autocommit: wrap it in `conn.transaction()` for more
        than one statement). Any failure to reach PostgreSQL is ControlPlaneUnavailable.

        A pooled connection may have died while it idled (PostgreSQL restarted): `work` then
        runs once more on another. Work that must not run twice (`retry=False`: a change whose
        commit was acknowledged but whose answer was lost would be made again, a second epoch
        bump) first proves its connection alive with a `select 1`, and is never repeated."""
        for attempt in (1, 2):
            begun = False
            try:
                with self._pool.connection() as conn:
                    if not retry:
                        conn.execute("select 1")
                    begun = True
                    return work(conn)
            except self._broken as exc:
                if (begun and not retry) or attempt == 2 or type(exc).__name__ == "PoolTimeout":
                    raise self.unavailable(exc) from None
            except self._error as exc:
                raise self.unavailable(exc) from None
        raise AssertionError("unreachable")

    def secret(self) -> bytes:
        """The cluster's shared secret (made by the first migration): nodes sign with it."""
        row = self.run(lambda c: c.execute("select key from cluster_secret where id = 1").fetchone())
        assert row is not None
        return bytes(row[0])

    # -- nodes ----------------------------------------------------------------------------------

    def join(self, name: str, url: str) -> Node:
        """Register this process as node `name` at `url`, with a new incarnation. Raises
        NodeNameClash if another incarnation of that name is alive (it heartbeats)."""
        incarnation = uuid.uuid4()

        def join(conn: psycopg.Connection[Any]) -> Node:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(hashtext('gitstore-node:' || %s))", (name,))
                held = conn.execute(
                    f"""select extract(epoch from now() - n.heartbeat_at), {_ALIVE}, n.incarnation
                        from nodes n where n.name = %s""",
                    (name,),
                ).fetchone()
                # Its own incarnation is no clash: a retry of a join whose answer was lost.
                if held is not None and held[1] and held[2] != incarnation:
                    raise NodeNameClash(
                        f"node name {name!r} is held by another live process (heartbeat {float(held[0]):.1f} s ago)",
                        node=name,
                    )
                conn.execute(
                    """insert into nodes (name, url, state, heartbeat_at, started_at, incarnation)
                        values (%s, %s, 'active', now(), now(), %s)
                    on conflict (name) do update set url = excluded.url, heartbeat_at = now(),
                        started_at = now(), incarnation = excluded.incarnation,
                        state = case when nodes.state = 'draining' then 'draining' else 'active' end""",
                    (name, url, incarnation),
                )
            return _existing_node(conn, name)

        joined = self.run(join)
        self.incarnation = incarnation
        return joined

    def heartbeat(self, name: str) -> None:
        """Say node `name` (this process's incarnation) is alive. Raises NodeNameClash if
        another incarnation took the name meanwhile (this process was paused past LIVENESS)."""
        updated = self.run(
            lambda c: (
                c.execute(
                    "update nodes set heartbeat_at = now() where name = %s and incarnation = %s",
                    (name, self.incarnation),
                ).rowcount
            )
        )
        if not updated:
            raise NodeNameClash(f"node name {name!r} was taken over by another process", node=name)

    def leave(self, name: str) -> None:
        """A clean stop: this incarnation of node `name` is down (a draining node stays draining)."""
        self.run(
            lambda c: c.execute(
                """update nodes set state = case when state = 'draining' then 'draining' else 'down' end,
                    heartbeat_at = now() - interval '1 hour' where name = %s and incarnation = %s""",
                (name, self.incarnation),
            )
        )

    def set_node_state(self, name: str, state: str) -> None:
        """Raises UnknownNode, ValueError for a state that is not one of NODE_STATES."""
        if state not in NODE_STATES:
            raise ValueError(f"a node's state is one of {', '.join(NODE_STATES)}, not {state!r}")
        updated = self.run(lambda c: c.execute("update nodes set state = %s where name = %s", (state, name)).rowcount)
        if not updated:
            raise UnknownNode(f"no node {name!r} in the cluster", node=name)

    def nodes(self) -> list[Node]:
        rows = self.run(lambda c: c.execute(_NODE + " order by n.name").fetchall())
        return [Node(*row) for row in rows]

    def node(self, name: str) -> Node | None:
        return self.run(lambda c: _node(c, name))

    # -- repositories ---------------------------------------------------------------------------

    def place(self, repo: str, description: str = "") -> Route:
        """Register new repository `repo` on the active, alive node with the fewest repositories
        (those moving to it count). Raises RepositoryExists, NoNodeAvailable, InvalidName."""
        validate_repo_name(repo)

        def place(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", (_PLACEMENT_LOCK,))
                if conn.execute("select 1 from repositories where name = %s", (repo,)).fetchone():
                    raise RepositoryExists(f"repository {repo!r} already exists", name=repo)
                least = conn.execute(
                    f"""select n.name from nodes n where n.state = 'active' and {_ALIVE}
                        order by (select count(*) from repositories r
                                  where r.owner = n.name or r.move_target = n.name), n.name
                        limit 1"""
                ).fetchone()
                if least is None:
                    raise NoNodeAvailable(f"no active node can take repository {repo!r}", name=repo, retry_after=5)
                conn.execute(
                    "insert into repositories (name, owner, state, description) values (%s, %s, 'active', %s)",
                    (repo, least[0], description),
                )

        self.run(place, retry=False)
        return self._route_or_raise(repo)

    def adopt(self, repos: Mapping[str, str], node: str) -> dict[str, Route]:
        """Register on `node` each of `repos` (name -> description) the control plane does not
        know yet (repositories that were on a node's disk before it joined); every route of the
        cluster afterwards, by repository."""
        names = sorted(repos)
        self.run(
            lambda c: c.execute(
                """insert into repositories (name, owner, state, description)
                    select name, %s, 'active', description from unnest(%s::text[], %s::text[]) as t(name, description)
                    on conflict (name) do nothing""",
                (node, names, [repos[name] for name in names]),
            )
        )
        return {route.repo: route for route in self.routes()}

    def route(self, repo: str) -> Route | None:
        row = self.run(lambda c: c.execute(_ROUTE + " where r.name = %s", (repo,)).fetchone())
        return None if row is None else Route(*row)

    def routes(self) -> list[Route]:
        return [Route(*row) for row in self.run(lambda c: c.execute(_ROUTE + " order by r.name").fetchall())]

    def forget(self, repo: str, *, owner: str | None = None) -> None:
        """Remove `repo` from the control plane (only if `owner` owns it, when named)."""
        if owner is None:
            self.run(lambda c: c.execute("delete from repositories where name = %s", (repo,)))
        else:
            self.run(lambda c: c.execute("delete from repositories where name = %s and owner = %s", (repo, owner)))

    def check_owner(self, repo: str, node: str, epoch: int, *, incarnation: uuid.UUID | None = None) -> Checked:
        """Nothing if `node` (this incarnation of it, when named) owns `repo` at `epoch` and may
        write it (active or moving); else NotOwner. ControlPlaneUnavailable if PostgreSQL is
        gone: the fence fails closed. Returns the repository's in-sync replicas and replication
        factor, read in the same query: a round must reach each of them before its refs move
        (ADR 0016)."""
        row = self.run(
            lambda c: c.execute(
                """select r.owner, r.epoch, r.state, n.incarnation, r.replication_factor,
                        coalesce((select array_agg(array[s.node, m.url] order by s.node)
                                  from repository_replicas s join nodes m on m.name = s.node
                                  where s.repository = r.name and s.in_sync), '{}')
                    from repositories r join nodes n on n.name = r.owner where r.name = %s""",
                (repo,),
            ).fetchone()
        )
        if row is None:
            raise NotOwner(f"repository {repo!r} is not in the control plane", name=repo)
        owner, current, state, holder, factor, in_sync = row
        if owner != node or current != epoch or state not in ("active", "moving"):
            raise NotOwner(
                f"node {node} may not write repository {repo!r} now: owner {owner} at epoch {current}, {state}",
                name=repo,
                node=owner,
            )
        if incarnation is not None and holder != incarnation:
            raise NotOwner(f"node {node}'s name was taken over by another process", name=repo, node=owner)
        return Checked([(str(name), str(url)) for name, url in in_sync], int(factor))

    # -- moves ----------------------------------------------------------------------------------

    def begin_move(self, repo: str, target: str) -> Route:
        """Mark `repo` as moving to node `target`. Raises RepositoryNotFound, UnknownNode,
        NodeDown (target not active or not alive), MoveInProgress, MoveToOwner."""

        def begin(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                row = conn.execute(
                    "select owner, state from repositories where name = %s for update", (repo,)
                ).fetchone()
                if row is None:
                    raise RepositoryNotFound(f"no repository {repo!r}", name=repo)
                to = _node(conn, target)
                if to is None:
                    raise UnknownNode(f"no node {target!r} in the cluster", node=target)
                if to.state != "active" or not to.alive:
                    raise NodeDown(f"node {target!r} is {to.state}{'' if to.alive else ', not alive'}", node=target)
                owner, state = row
                if state != "active":
                    raise MoveInProgress(f"repository {repo!r} is already {state}", name=repo)
                if owner == target:
                    raise MoveToOwner(f"repository {repo!r} already lives on node {target!r}", name=repo, node=target)
                conn.execute(
                    """update repositories set state = 'moving', move_target = %s, updated_at = now()
                        where name = %s""",
                    (target, repo),
                )

        self.run(begin, retry=False)
        return self._route_or_raise(repo)

    def fence(self, repo: str) -> int:
        """Fence a moving repository: no write of the current owner passes its check from now on
        (state fenced, epoch + 1). Returns the new epoch. Raises MoveInProgress if it is not
        moving."""
        row = self.run(
            lambda c: c.execute(
                """update repositories set state = 'fenced', epoch = epoch + 1, updated_at = now()
                    where name = %s and state = 'moving' returning epoch""",
                (repo,),
            ).fetchone(),
            retry=False,
        )
        if row is None:
            raise MoveInProgress(f"repository {repo!r} is not being moved, so it cannot be fenced", name=repo)
        return int(row[0])

    def finish_move(self, repo: str, target: str, epoch: int) -> Route:
        """Flip the route: `target` owns `repo` at `epoch` (the fence's). Raises MoveInProgress
        if the repository is not fenced for that target at that epoch."""

        def flip(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                flipped = conn.execute(
                    """update repositories set owner = %s, state = 'active', move_target = null, updated_at = now()
                    where name = %s and state = 'fenced' and move_target = %s and epoch = %s""",
                    (target, repo, target, epoch),
                ).rowcount
                if flipped:
                    # The replicas followed the old owner's rounds: they catch up from the new one.
                    conn.execute("delete from repository_replicas where repository = %s and node = %s", (repo, target))
                    conn.execute(
                        "update repository_replicas set in_sync = false, changed_at = now() where repository = %s",
                        (repo,),
                    )
                return flipped

        updated = self.run(flip, retry=False)
        if not updated:
            raise MoveInProgress(f"repository {repo!r} is not fenced for node {target!r} at epoch {epoch}", name=repo)
        return self._route_or_raise(repo)

    def abort_move(self, repo: str) -> Route:
        """Back to active on the old owner (a fenced epoch stays bumped: the owner re-guards)."""
        self.run(
            lambda c: c.execute(
                """update repositories set state = 'active', move_target = null, updated_at = now()
                    where name = %s and state in ('moving', 'fenced')""",
                (repo,),
            )
        )
        return self._route_or_raise(repo)

    # -- helpers --------------------------------------------------------------------------------

    def _route_or_raise(self, repo: str) -> Route:
        found = self.route(repo)
        if found is None:
            raise RepositoryNotFound(f"no repository {repo!r}", name=repo)
        return found

    def _connect_options(self) -> dict[str, Any]:
        timeout_ms = int(self._timeout * 1000)
        return {
            "autocommit": True,
            "connect_timeout": max(2, int(self._timeout)),
            # A PostgreSQL that stops answering (paused, cut off) must not hold a write, with its
            # repository's locks, for the kernel's TCP timeout of many minutes.
            "tcp_user_timeout": timeout_ms,
            "keepalives_idle": max(1, int(self._timeout)),
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "options": f"-c statement_timeout={timeout_ms}",
            "application_name": "gitstore",
        }

    def unavailable(self, exc: BaseException) -> ControlPlaneUnavailable:
        reason = _scrubbed(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, self._dsn)
        return ControlPlaneUnavailable(
            f"the control plane (PostgreSQL at {self.where}) cannot be reached: {reason}", retry_after=2
        )


def _node(conn: psycopg.Connection[Any], name: str) -> Node | None:
    row = conn.execute(_NODE + " where n.name = %s", (name,)).fetchone()
    return None if row is None else Node(*row)


def _existing_node(conn: psycopg.Connection[Any], name: str) -> Node:
    found = _node(conn, name)
    if found is None:
        raise UnknownNode(f"no node {name!r} in the cluster", node=name)
    return found


def describe_dsn(dsn: str) -> str:
    """host:port of a PostgreSQL URL or key=value string, for messages: never its password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:  # a DSN that does not parse has nothing safe to show
        return "an unreadable DSN"
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    return f"{host}:{parts.get('port') or 5432}"


def _scrubbed(text: str, dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(dsn).get("password")
    except Exception:
        return "the DSN could not be read"
    return text.replace(str(password), "***") if password else text

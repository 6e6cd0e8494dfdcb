"""The control plane as a part of a node's backup (issue 24): what only PostgreSQL knows.

Which node owns each repository at which epoch, with which replicas and factor; the nodes; the
cluster's secret (nodes sign their calls to each other with it); and the credentials (tokens,
OAuth clients, the key that signs the service's own tokens). `gitstore backup` on a cluster node
saves them, as one consistent state (a REPEATABLE READ transaction), into
`parts/cluster/cluster-<fingerprint>.json`, 0600: it holds the cluster secret and the signing
key. The fingerprint (of the cluster secret) says which cluster the part belongs to.

`gitstore restore` puts them back in one transaction, into a control plane that holds no
repository and no token yet, or one of another cluster with `--force`. A control plane of the
same cluster that holds something is left as it is (never rolled back): so a whole cluster comes
back as a fresh PostgreSQL, then `gitstore restore` on each node from its own backup, then the
nodes started; the first restore brings the control plane back, the others find it there.

Every replica comes back out of the in-sync set: the nodes' backups are taken at different
moments, so a replica's copy may be older than its owner's, and it catches up from the owner as
after a restart. A move under way at backup time is forgotten: the repository stays with its owner.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gitstore.errors import AlreadyExists, InvalidInput
from gitstore.storage.api import write_atomically

if TYPE_CHECKING:
    import psycopg

    from gitstore.cluster.control import ControlPlane

__all__ = ["ClusterPart"]

#: In the order a restore inserts them (each after the tables it references).
TABLES = ("cluster_secret", "nodes", "repositories", "repository_replicas", "tokens", "oauth_clients", "signing_keys")


class ClusterPart:
    """The control plane `plane`, as a part of a backup (gitstore.backup.NodePart)."""

    name = "cluster"

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def save(self, into: Path) -> list[str]:
        def read(conn: psycopg.Connection[Any]) -> dict[str, list[Any]]:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                return {
                    table: conn.execute(f"select coalesce(json_agg(t), '[]'::json) from {table} t").fetchone()[0]  # type: ignore[index]
                    for table in TABLES
                }

        tables = self.plane.run(read)
        name = f"cluster-{_fingerprint(self.plane.secret())}.json"
        write_atomically(into / name, orjson.dumps({"version": 1, "tables": tables}), mode=0o600)
        return [name]

    def refuse_overwrite(self, names: list[str]) -> None:
        held = self._held()
        if names and held and not self._same_cluster(names):
            raise AlreadyExists(
                f"the control plane at {self.plane.where} holds {held} of another cluster; "
                "restore over it with --force",
                part=self.name,
            )

    def restore(self, files: dict[str, Path]) -> None:
        names = sorted(files)
        if not names or (self._held() and self._same_cluster(names)):
            return  # this cluster's control plane is there already (another node's restore brought it)
        try:
            tables = orjson.loads(files[names[0]].read_bytes())["tables"]
            rows = {table: orjson.dumps(tables[table]).decode() for table in TABLES}
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{names[0]} is not a control plane's backup: {exc}", file=names[0]) from None

        def load(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                for table in reversed(TABLES):
                    conn.execute(f"delete from {table}")
                for table in TABLES:
                    conn.execute(
                        f"insert into {table} select * from json_populate_recordset(null::{table}, %s::json)",
                        (rows[table],),
                    )
                conn.execute("update repository_replicas set in_sync = false, changed_at = now()")
                conn.execute("update repositories set state = 'active', move_target = null where state <> 'active'")

        self.plane.run(load, retry=False)

    def _held(self) -> str:
        """What the control plane holds that a restore would replace ('' if nothing)."""
        counts = self.plane.run(
            lambda c: c.execute("select (select count(*) from repositories), (select count(*) from tokens)").fetchone()
        )
        repositories, tokens = counts if counts else (0, 0)
        return ", ".join(f"{n} {what}" for n, what in ((repositories, "repositories"), (tokens, "token(s)")) if n)

    def _same_cluster(self, names: list[str]) -> bool:
        """Whether the part's file (by its name, or path in the backup) is of this cluster."""
        mine = f"cluster-{_fingerprint(self.plane.secret())}.json"
        return any(name.rsplit("/", 1)[-1] == mine for name in names)


def _fingerprint(secret: bytes) -> str:
    return hashlib.sha256(b"gitstore cluster " + secret).hexdigest()[:16]

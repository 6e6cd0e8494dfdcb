"""Credentials in PostgreSQL: a token made on one node works on every node, and a revocation
is refused on every node at once.

The same records as the credentials file (gitstore.access keeps their rules), in the tables
`tokens`, `oauth_clients` and `signing_keys`. Authentication asks PostgreSQL each time (one
indexed lookup): a revocation committed is a revocation everywhere, with no window for a NOTIFY
to arrive. Only when PostgreSQL cannot be reached does a node fall back to the records it last
read, so reads of its own repositories go on; nothing can be revoked meanwhile (revoking needs
PostgreSQL too), and writes are refused anyway (their fence check fails closed).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gitstore.access.api import (
    ClientInfo,
    IssuedSecret,
    Principal,
    TokenInfo,
    WrittenGrants,
    check_client_id,
    digest,
    expiry,
    holder_record,
    is_expired,
    new_token,
    parse_grants,
    token_id,
)
from gitstore.errors import AlreadyExists, ControlPlaneUnavailable, NotFound

if TYPE_CHECKING:
    import psycopg

    from gitstore.cluster.control import ControlPlane

__all__ = ["ClusterCredentials"]

_TOKEN_COLUMNS = "id, name, email, scopes, hash, created_at, expires_at"
_CLIENT_COLUMNS = "client_id, name, email, scopes, secret_hash, created_at"


class ClusterCredentials:
    """gitstore.access.CredentialStore over the control plane's tables."""

    def __init__(self, plane: ControlPlane) -> None:
        self._plane = plane
        self._open: bool | None = None
        self._was_open = False  # the last answer PostgreSQL gave, for while it is away
        self._key: bytes | None = None
        # Records last read, by id: what authentication falls back to while PostgreSQL is away.
        self._tokens: dict[str, tuple[Any, ...] | None] = {}
        self._clients: dict[str, tuple[Any, ...] | None] = {}
        self._guard = threading.Lock()

    def changed(self) -> None:
        """A NOTIFY said a credential changed (or LISTEN reconnected): re-read `is_open`."""
        self._open = None

    # -- reading -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        known = self._open
        if known is not None:
            return known
        try:
            row = self._plane.run(
                lambda c: c.execute(
                    "select not exists (select 1 from tokens) and not exists (select 1 from oauth_clients)"
                ).fetchone()
            )
        except ControlPlaneUnavailable:
            return self._was_open  # never asked yet: the closed answer, never the open one
        assert row is not None
        self._open = self._was_open = bool(row[0])
        return self._open

    def tokens(self) -> list[TokenInfo]:
        rows = self._plane.run(lambda c: c.execute(f"select {_TOKEN_COLUMNS} from tokens order by id").fetchall())
        return [TokenInfo(r[0], r[1], r[2], r[3], r[5], r[6]) for r in rows]

    def clients(self) -> list[ClientInfo]:
        rows = self._plane.run(
            lambda c: c.execute(f"select {_CLIENT_COLUMNS} from oauth_clients order by client_id").fetchall()
        )
        return [ClientInfo(r[0], r[1], r[2], r[3], r[5]) for r in rows]

    def authenticate_token(self, token: str) -> Principal | None:
        found = token_id(token)
        if found is None:
            return None
        record = self._read("tokens", "id", _TOKEN_COLUMNS, found, self._tokens)
        if record is None or not hmac.compare_digest(record[4], digest(token)) or is_expired(record[6]):
            return None
        return Principal(record[1], record[2], parse_grants(record[3]), f"token:{found}")

    def authenticate_client(self, client_id: str, secret: str) -> Principal | None:
        record = self._client(client_id)
        # Compare even for an unknown client, so timing does not say which ids exist.
        expected = record[4] if record else digest("")
        if not hmac.compare_digest(expected, digest(secret)) or record is None:
            return None
        return _client_principal(record)

    def client_principal(self, client_id: str) -> Principal | None:
        record = self._client(client_id)
        return None if record is None else _client_principal(record)

    def signing_key(self) -> bytes:
        """The cluster's key for access tokens, made once for all nodes (the first to ask)."""
        if self._key is None:

            def key(conn: psycopg.Connection[Any]) -> bytes:
                conn.execute(
                    "insert into signing_keys (id, key) values (1, %s) on conflict (id) do nothing",
                    (secrets.token_bytes(32),),
                )
                row = conn.execute("select key from signing_keys where id = 1").fetchone()
                assert row is not None
                return bytes(row[0])

            self._key = self._plane.run(key)
        return self._key

    # -- changing ------------------------------------------------------------------------------

    def create_token(
        self, name: str, email: str, scopes: WrittenGrants, *, expires_in: timedelta | None = None
    ) -> IssuedSecret:
        issued = new_token()
        record = holder_record(name, email, scopes)
        self._plane.run(
            lambda c: c.execute(
                f"insert into tokens ({_TOKEN_COLUMNS}) values (%s, %s, %s, %s, %s, %s, %s)",
                (
                    issued.id,
                    record["name"],
                    record["email"],
                    _json(record["scopes"]),
                    digest(issued.secret),
                    record["created_at"],
                    expiry(expires_in),
                ),
            ),
            retry=False,
        )
        self._open = self._was_open = False
        return issued

    def revoke_token(self, token_id: str) -> None:
        """Raises NotFound for an unknown id."""
        self._remove("tokens", "id", token_id, self._tokens, "token")

    def add_client(self, client_id: str, name: str, email: str, scopes: WrittenGrants) -> IssuedSecret:
        """Register an OAuth client. Raises AlreadyExists, InvalidInput."""
        check_client_id(client_id)
        secret = secrets.token_urlsafe(32)
        record = holder_record(name, email, scopes)
        added = self._plane.run(
            lambda c: (
                c.execute(
                    f"""insert into oauth_clients ({_CLIENT_COLUMNS}) values (%s, %s, %s, %s, %s, %s)
                    on conflict (client_id) do nothing""",
                    (
                        client_id,
                        record["name"],
                        record["email"],
                        _json(record["scopes"]),
                        digest(secret),
                        record["created_at"],
                    ),
                ).rowcount
            ),
            retry=False,
        )
        if not added:
            raise AlreadyExists(f"client {client_id!r} already exists")
        self._open = self._was_open = False
        return IssuedSecret(client_id, secret)

    def remove_client(self, client_id: str) -> None:
        """Raises NotFound for an unknown id."""
        self._remove("oauth_clients", "client_id", client_id, self._clients, "client")

    # -- PostgreSQL ----------------------------------------------------------------------------

    def _client(self, client_id: str) -> tuple[Any, ...] | None:
        return self._read("oauth_clients", "client_id", _CLIENT_COLUMNS, client_id, self._clients)

    def _read(
        self, table: str, key: str, columns: str, id: str, last: dict[str, tuple[Any, ...] | None]
    ) -> tuple[Any, ...] | None:
        try:
            row = self._plane.run(
                lambda c: c.execute(f"select {columns} from {table} where {key} = %s", (id,)).fetchone()
            )
        except ControlPlaneUnavailable:
            return last.get(id)
        with self._guard:
            if row is None:
                last.pop(id, None)
            else:
                last[id] = tuple(row)
        return None if row is None else tuple(row)

    def _remove(self, table: str, key: str, id: str, last: dict[str, tuple[Any, ...] | None], kind: str) -> None:
        removed = self._plane.run(
            lambda c: c.execute(f"delete from {table} where {key} = %s", (id,)).rowcount, retry=False
        )
        with self._guard:
            last.pop(id, None)
        self._open = None
        if not removed:
            raise NotFound(f"no {kind} {id!r}")


def _client_principal(record: tuple[Any, ...]) -> Principal:
    return Principal(record[1], record[2], parse_grants(record[3]), f"client:{record[0]}")


def _json(value: object) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)

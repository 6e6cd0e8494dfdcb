"""The control plane's tables, made by migrations every node applies when it starts.

Each migration is a list of SQL statements with a version. A node applies the ones not yet in
`schema_migrations`, all in one transaction under a transaction-scoped advisory lock: nodes that
start together queue there, and the second finds the work done. A failed migration leaves
nothing behind (PostgreSQL's DDL is transactional).

Who may write a repository is `repositories.owner` at `repositories.epoch`, nothing else:
its replicas (issue 24) are rows of `repository_replicas` beside it. Every change to `repositories`
NOTIFYs `gitstore_routes` with the repository's name, and every change to a credential
`gitstore_credentials`, from triggers, so no writer can forget to.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[Any]

__all__ = ["CREDENTIALS_CHANNEL", "MIGRATIONS", "ROUTES_CHANNEL", "migrate"]

ROUTES_CHANNEL = "gitstore_routes"
CREDENTIALS_CHANNEL = "gitstore_credentials"

# pg_advisory_xact_lock's key for migrations: any constant no other user of the database takes.
_MIGRATION_LOCK = 0x6769_7473_746F_7265 & 0x7FFF_FFFF_FFFF_FFFF  # "gitstore"

# A step is SQL, or a function of the connection for what SQL alone cannot say (a secret made here).
Step = str | Callable[["Connection"], object]
MIGRATIONS: list[tuple[int, list[Step]]] = [
    (
        1,
        [
            """create table cluster_secret (
                id int primary key check (id = 1),
                key bytea not null)""",
            lambda conn: conn.execute(
                "insert into cluster_secret (id, key) values (1, %s)", (secrets.token_bytes(32),)
            ),
            """create table nodes (
                name text primary key,
                url text not null,
                state text not null check (state in ('active', 'draining', 'down')),
                heartbeat_at timestamptz not null,
                started_at timestamptz not null,
                incarnation uuid not null)""",
            """create table repositories (
                name text primary key,
                owner text not null references nodes (name),
                epoch bigint not null default 1,
                state text not null check (state in ('active', 'moving', 'fenced')),
                move_target text references nodes (name),
                description text not null default '',
                created_at timestamptz not null default now(),
                updated_at timestamptz not null default now())""",
            "create index repositories_by_owner on repositories (owner)",
            """create function gitstore_notify_route() returns trigger language plpgsql as $$
                begin
                    perform pg_notify('gitstore_routes', coalesce(new.name, old.name));
                    return null;
                end $$""",
            """create trigger repositories_notify after insert or update or delete on repositories
                for each row execute function gitstore_notify_route()""",
            # What gitstore.access.Credentials keeps in its file, for every node at once.
            """create table tokens (
                id text primary key,
                name text not null,
                email text not null,
                scopes jsonb not null,
                hash text not null,
                created_at text not null,
                expires_at text)""",
            """create table oauth_clients (
                client_id text primary key,
                name text not null,
                email text not null,
                scopes jsonb not null,
                secret_hash text not null,
                created_at text not null)""",
            """create table signing_keys (
                id int primary key check (id = 1),
                key bytea not null)""",
            """create function gitstore_notify_credentials() returns trigger language plpgsql as $$
                begin
                    perform pg_notify('gitstore_credentials', tg_table_name);
                    return null;
                end $$""",
            """create trigger tokens_notify after insert or update or delete on tokens
                for each statement execute function gitstore_notify_credentials()""",
            """create trigger oauth_clients_notify after insert or update or delete on oauth_clients
                for each statement execute function gitstore_notify_credentials()""",
        ],
    ),
    (
        2,
        [
            # Issue 24 (ADR 0016): each repository's copies besides its owner's. Only a replica
            # `in_sync` holds every acknowledged write, and so only it may be promoted.
            "alter table repositories add column replication_factor int not null default 1",
            """create table repository_replicas (
                repository text not null references repositories (name) on delete cascade,
                node text not null references nodes (name),
                in_sync boolean not null default false,
                changed_at timestamptz not null default now(),
                primary key (repository, node))""",
            "create index repository_replicas_by_node on repository_replicas (node)",
        ],
    ),
]


def migrate(conn: Connection) -> list[int]:
    """Apply the migrations `conn`'s database lacks; the versions applied (none if up to date)."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            """create table if not exists schema_migrations (
                version int primary key,
                applied_at timestamptz not null default now())"""
        )
        done = {row[0] for row in conn.execute("select version from schema_migrations")}
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            for step in statements:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
            conn.execute("insert into schema_migrations (version) values (%s)", (version,))
            applied.append(version)
    return applied

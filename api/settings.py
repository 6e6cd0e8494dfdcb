"""Service settings, read once from the environment."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from gitstore.access.api import default_path
from gitstore.environment import seconds, whole_number

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PUBLIC_AUTHORS = ("name", "none")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("data"))
    load_samples: bool = True
    samples_dir: Path = PROJECT_ROOT / "sample_repos"
    max_body_bytes: int = 10 * 1024 * 1024
    # An import's body (a compressed bundle) is spooled to disk, so it may be much larger.
    max_import_bytes: int = 256 * 1024 * 1024
    # Seconds a request body may take per MiB (408 after); see api.body.body_chunks.
    body_timeout: float = 30.0
    # The author of every change while no credentials are configured (loopback callers only).
    author_name: str = "gitstore user"
    author_email: str = "user@gitstore.invalid"
    # Hashed tokens, OAuth clients and the signing key; default <data_dir>/credentials.json.
    credentials_file: Path | None = None
    # With credentials configured, callers without a token may read live content.
    anonymous_read: bool = False
    # What callers without the preview right see of an author: "name", or "none" (nothing).
    # Never the e-mail address (issue 18); the live-only git copy's commit authors follow it too.
    public_authors: str = "name"
    # Per token (anonymous callers: per address) and per worker, in `limits` notation; "" = off.
    rate_limit: str = "100/second"
    access_token_seconds: int = 900
    cors_origins: tuple[str, ...] = ()
    docs: bool = True
    max_clones: int = 4
    upload_pack_timeout: float = 300.0
    # Background housekeeping (gitstore.upkeep.packing.maintain) every so many seconds; 0 = off.
    # The service turns it on (GITSTORE_HOUSEKEEPING, default 300); an app built here has it off.
    housekeeping_seconds: float = 0.0
    # Fold draft changes into refs/heads/draft every so many seconds (GITSTORE_FOLD_SECONDS);
    # 0 = only when something reads `draft`, or 1,000 wait.
    fold_seconds: float = 1.0
    # How long a request waits for a repository lock that someone else holds before it is
    # answered 503 (GITSTORE_LOCK_WAIT), and how many requests of a worker may be waiting for
    # locks at once, the rest answered 503 at once (GITSTORE_LOCK_WAITERS): a waiting request
    # holds one of the 40 threads that reads and every other repository need too. 32 leaves 8
    # for them, enough for reads of a few milliseconds; 16 refused publishes under make load's
    # mixed run, where publishes queue behind each other for up to a second or two.
    lock_wait: float = 5.0
    lock_waiters: int = 32
    # Events out (gitstore.relay, ADR 0012): a RabbitMQ sink if set (GITSTORE_AMQP_URL), and
    # non-public webhook targets allowed despite SSRF rules (GITSTORE_WEBHOOK_ALLOW).
    amqp_url: str | None = None
    amqp_exchange: str = "published_documents"
    webhook_allow: str = ""
    webhook_tries: int = 8
    relay_retry_seconds: float = 1.0
    # The relay (GITSTORE_RELAY, default 1; an app built here has it off) relays to the RabbitMQ
    # sink and to webhook subscriptions, wherever one exists.
    relay: bool = False
    # Cluster mode (issue 23, gitstore.cluster; README "Running a cluster"): a PostgreSQL URL
    # for the control plane (GITSTORE_CLUSTER_DSN; unset = one embedded node, no PostgreSQL),
    # this node's name, unique in the cluster (GITSTORE_NODE_NAME; default the host name), and
    # the URL the other nodes reach it at (GITSTORE_NODE_URL).
    cluster_dsn: str | None = None
    node_name: str = ""
    node_url: str = ""

    def __post_init__(self) -> None:
        if self.public_authors not in PUBLIC_AUTHORS:
            raise ValueError(
                f"GITSTORE_PUBLIC_AUTHORS is one of {', '.join(PUBLIC_AUTHORS)}, not {self.public_authors!r}"
            )
        if self.cluster_dsn and not (self.node_name and self.node_url):
            raise ValueError("cluster mode (GITSTORE_CLUSTER_DSN) needs GITSTORE_NODE_NAME and GITSTORE_NODE_URL")

    @property
    def credentials_path(self) -> Path:
        return self.credentials_file or default_path(self.data_dir)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        credentials = env.get("GITSTORE_CREDENTIALS")
        return cls(
            data_dir=Path(env.get("GITSTORE_DATA", "data")),
            load_samples=_flag(env.get("GITSTORE_SAMPLES", "1")),
            samples_dir=Path(env.get("GITSTORE_SAMPLES_DIR", str(PROJECT_ROOT / "sample_repos"))),
            max_body_bytes=whole_number("GITSTORE_MAX_BODY", 10 * 1024 * 1024, minimum=1),
            max_import_bytes=whole_number("GITSTORE_MAX_IMPORT", 256 * 1024 * 1024, minimum=1),
            body_timeout=seconds("GITSTORE_BODY_TIMEOUT", 30),
            author_name=env.get("GITSTORE_AUTHOR_NAME", "gitstore user"),
            author_email=env.get("GITSTORE_AUTHOR_EMAIL", "user@gitstore.invalid"),
            credentials_file=Path(credentials) if credentials else None,
            anonymous_read=env.get("GITSTORE_ANONYMOUS", "none") == "read",
            public_authors=env.get("GITSTORE_PUBLIC_AUTHORS", "name"),
            rate_limit=env.get("GITSTORE_RATE_LIMIT", "100/second"),
            access_token_seconds=whole_number("GITSTORE_ACCESS_TOKEN_SECONDS", 900, minimum=1),
            cors_origins=tuple(o.strip() for o in env.get("GITSTORE_CORS_ORIGINS", "").split(",") if o.strip()),
            docs=_flag(env.get("GITSTORE_DOCS", "1")),
            max_clones=whole_number("GITSTORE_MAX_CLONES", 4, minimum=1),
            upload_pack_timeout=seconds("GITSTORE_UPLOAD_PACK_TIMEOUT", 300),
            housekeeping_seconds=seconds("GITSTORE_HOUSEKEEPING", 300, positive=False),  # 0: off
            fold_seconds=seconds("GITSTORE_FOLD_SECONDS", 1, positive=False),  # 0: off
            lock_wait=seconds("GITSTORE_LOCK_WAIT", 5, positive=False),
            lock_waiters=whole_number("GITSTORE_LOCK_WAITERS", 32),
            amqp_url=env.get("GITSTORE_AMQP_URL") or None,
            amqp_exchange=env.get("GITSTORE_AMQP_EXCHANGE", "published_documents"),
            webhook_allow=env.get("GITSTORE_WEBHOOK_ALLOW", ""),
            webhook_tries=whole_number("GITSTORE_WEBHOOK_TRIES", 8, minimum=1),
            relay_retry_seconds=seconds("GITSTORE_RELAY_RETRY_SECONDS", 1),
            relay=_flag(env.get("GITSTORE_RELAY", "1")),
            cluster_dsn=env.get("GITSTORE_CLUSTER_DSN") or None,
            node_name=env.get("GITSTORE_NODE_NAME") or socket.gethostname(),
            node_url=env.get("GITSTORE_NODE_URL", ""),
        )


def _flag(value: str) -> bool:
    return value.lower() not in ("0", "false", "no", "off")

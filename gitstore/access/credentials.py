"""The credentials file: hashed bearer tokens, OAuth clients and the key that signs their tokens.

One JSON file (mode 0600) that the service and the CLI share. Secrets are shown once, when made,
and stored only as SHA-256 digests: tokens are 256 random bits, so a slow password hash would
buy nothing, and a fast one keeps authentication off the request's critical path. A token reads
`gst_<id>_<secret>`: the id finds the record without comparing against every hash, and is what
logs and rate limits name. Every process re-reads the file when it changes, so a revocation
made by the CLI or another worker takes effect on the next request.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from gitstore.access.scopes import Principal, Scope, parse_grants
from gitstore.errors import AlreadyExists, InvalidInput, NotFound
from gitstore.storage.api import write_atomically

__all__ = [
    "ClientInfo",
    "Credentials",
    "IssuedSecret",
    "TokenInfo",
    "check_client_id",
    "default_path",
    "digest",
    "expiry",
    "holder_record",
    "is_expired",
    "new_token",
    "token_id",
]

# Grants as written, `{"repo or *": ["scope", ...]}`: checked scope names (the API's schema) or
# names not checked yet (the CLI's); parse_grants checks either before anything is stored.
Grants = Mapping[str, list[str]] | Mapping[str, list[Scope]]

_TOKEN = re.compile(r"gst_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def default_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the service and the CLI both look when no credentials file is named."""
    return Path(data_dir) / "credentials.json"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    email: str
    scopes: dict[str, list[str]]
    created_at: str
    expires_at: str | None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    client_id: str
    name: str
    email: str
    scopes: dict[str, list[str]]
    created_at: str


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A new credential: `secret` is shown to its owner once and never stored."""

    id: str
    secret: str


class Credentials:
    """The credentials file at `path` (created on the first change)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._data: dict[str, Any] = _empty()
        self._guard = threading.Lock()

    # -- reading -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """No token and no client is configured: the server trusts whoever can reach it."""
        data = self._current()
        return not data["tokens"] and not data["clients"]

    def tokens(self) -> list[TokenInfo]:
        return [
            TokenInfo(id, t["name"], t["email"], t["scopes"], t["created_at"], t["expires_at"])
            for id, t in sorted(self._current()["tokens"].items())
        ]

    def clients(self) -> list[ClientInfo]:
        return [
            ClientInfo(id, c["name"], c["email"], c["scopes"], c["created_at"])
            for id, c in sorted(self._current()["clients"].items())
        ]

    def authenticate_token(self, token: str) -> Principal | None:
        """The principal a `gst_` token stands for, or None if it is unknown, wrong or expired."""
        found = token_id(token)
        if found is None:
            return None
        record = self._current()["tokens"].get(found)
        if record is None or not hmac.compare_digest(record["hash"], digest(token)) or is_expired(record["expires_at"]):
            return None
        return Principal(record["name"], record["email"], parse_grants(record["scopes"]), f"token:{found}")

    def authenticate_client(self, client_id: str, secret: str) -> Principal | None:
        """The principal of an OAuth client whose secret matches, else None."""
        record = self._current()["clients"].get(client_id)
        # Compare even for an unknown client, so timing does not say which ids exist.
        expected = record["secret_hash"] if record else digest("")
        if not hmac.compare_digest(expected, digest(secret)) or record is None:
            return None
        return self.client_principal(client_id)

    def client_principal(self, client_id: str) -> Principal | None:
        """The principal of a configured client (None once it is removed)."""
        record = self._current()["clients"].get(client_id)
        if record is None:
            return None
        return Principal(record["name"], record["email"], parse_grants(record["scopes"]), f"client:{client_id}")

    def signing_key(self) -> bytes:
        """The HMAC key for the service's own signed tokens, made on first use."""
        key = self._current()["signing_key"]
        if key is None:

            def add_key(data: dict[str, Any]) -> None:
                data["signing_key"] = data["signing_key"] or _b64(secrets.token_bytes(32))

            key = self._update(add_key)["signing_key"]
        return base64.urlsafe_b64decode(key)

    # -- changing ------------------------------------------------------------------------------

    def create_token(
        self, name: str, email: str, scopes: Grants, *, expires_in: timedelta | None = None
    ) -> IssuedSecret:
        issued = new_token()
        record = holder_record(name, email, scopes) | {"hash": digest(issued.secret), "expires_at": expiry(expires_in)}
        self._update(lambda data: data["tokens"].__setitem__(issued.id, record))
        return issued

    def revoke_token(self, token_id: str) -> None:
        """Raises NotFound for an unknown id."""
        self._remove("tokens", token_id)

    def add_client(self, client_id: str, name: str, email: str, scopes: Grants) -> IssuedSecret:
        """Register an OAuth client. Raises AlreadyExists, InvalidInput."""
        check_client_id(client_id)
        secret = secrets.token_urlsafe(32)
        record = holder_record(name, email, scopes) | {"secret_hash": digest(secret)}

        def add(data: dict[str, Any]) -> None:
            if client_id in data["clients"]:
                raise AlreadyExists(f"client {client_id!r} already exists")
            data["clients"][client_id] = record

        self._update(add)
        return IssuedSecret(client_id, secret)

    def remove_client(self, client_id: str) -> None:
        """Raises NotFound for an unknown id."""
        self._remove("clients", client_id)

    def _remove(self, kind: str, id: str) -> None:
        def remove(data: dict[str, Any]) -> None:
            if data[kind].pop(id, None) is None:
                raise NotFound(f"no {kind[:-1]} {id!r}")

        self._update(remove)

    # -- the file ------------------------------------------------------------------------------

    def _current(self) -> dict[str, Any]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return _empty()
        seen = (stat.st_mtime_ns, stat.st_ino)
        with self._guard:
            if seen != self._seen:
                self._data = _parse(self.path.read_bytes())
                self._seen = seen
            return self._data

    def _update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply `change` to the file's latest content and replace the file atomically."""
        with self._file_lock():
            data = _parse(self.path.read_bytes()) if self.path.exists() else _empty()
            change(data)
            write_atomically(
                self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), mode=0o600
            )
        return data

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def token_id(token: str) -> str | None:
    """The id part of a well-formed `gst_` token (what finds its record), else None."""
    match = _TOKEN.fullmatch(token)
    return None if match is None else match.group(1)


def new_token() -> IssuedSecret:
    """A new token: its id, and the secret its holder is shown once."""
    found = secrets.token_hex(6)
    return IssuedSecret(found, f"gst_{found}_{secrets.token_urlsafe(32)}")


def expiry(expires_in: timedelta | None) -> str | None:
    return (_now() + expires_in).isoformat(timespec="seconds") if expires_in else None


def is_expired(expires_at: str | None) -> bool:
    return bool(expires_at) and datetime.fromisoformat(str(expires_at)) <= _now()


def check_client_id(client_id: str) -> None:
    """Raises InvalidInput unless `client_id` may name an OAuth client."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput(f"invalid client id {client_id!r}", errors=[{"loc": ["client_id"], "msg": "a-z0-9._-"}])


def _empty() -> dict[str, Any]:
    return {"version": 1, "signing_key": None, "tokens": {}, "clients": {}}


def _parse(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = _empty() | orjson.loads(raw)
    if data["version"] != 1:
        raise InvalidInput(f"unsupported credentials file version {data['version']!r}")
    return data


def holder_record(name: str, email: str, scopes: Grants) -> dict[str, Any]:
    """The record of whoever holds a credential. Raises InvalidInput."""
    # Name and email become a git author line: no angle brackets or line breaks.
    for loc, value in (("name", name), ("email", email)):
        if not value or any(c in value for c in "<>\n\r\0"):
            raise InvalidInput(f"invalid {loc} {value!r}", errors=[{"loc": [loc], "msg": "no <, >, or line breaks"}])
    parse_grants(scopes)
    return {
        "name": name,
        "email": email,
        "scopes": {repo: list(s) for repo, s in scopes.items()},
        "created_at": _now().isoformat(timespec="seconds"),
    }


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _now() -> datetime:
    return datetime.now(UTC)

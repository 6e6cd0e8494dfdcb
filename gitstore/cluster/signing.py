"""The inter-node signature: how a node tells another "this request comes from me, a node of
this cluster", with an HMAC-SHA256 keyed by the cluster secret (kept in PostgreSQL, so every node
has it and nobody outside does).

A forwarded request carries `Gitstore-Forwarded: node=<name>, ts=<unix>, for=<client>, sig=<hex>`.
What it proves, and so what the receiving node may do with it, is little on purpose:

- the request was forwarded once already, so it is never forwarded again (a node that does not
  own the repository answers 421 and the forwarder retries once): no loops;
- the caller's address is `for`, not the forwarder's (rate limits per address, and the loopback
  rule of a server without credentials, see the caller, not the forwarding node).

It never stands for a caller's rights: the caller's own Authorization travels with the request
and the owner authenticates it as if it had come straight. So a forged or replayed header can
at most stop one forward (the forger then gets a 421) or claim an address; a header that does
not verify is dropped, and the request is treated as from outside.

The signature covers the method and the raw path (without the query: HTTP clients re-quote a
query, and a mismatch must not turn into a second forward), and is good for `MAX_AGE` seconds
either side of the receiver's clock.

Node-to-node git fetches (a move copying a repository) cannot add a header through git, so the
same signature is also made into a Basic password, `node:<name>:<ts>:<sig>`, bound to the
repository it reads.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

HEADER = "Gitstore-Forwarded"
#: Seconds a signature stays good, either side of the receiver's clock (nodes run NTP).
MAX_AGE = 30.0
#: A node's git fetch runs several requests and a move repeats its fetches: a password lives longer.
GIT_PASSWORD_MAX_AGE = 300.0

_FORWARDED = b"gitstore-forwarded-v1"
_GIT = b"gitstore-git-v1"
_PASSWORD_PREFIX = "node:"


@dataclass(frozen=True)
class Forwarded:
    """A verified forwarding header: which node sent the request, on behalf of which address."""

    node: str
    client: str


def forwarded_header(secret: bytes, node: str, method: str, path: bytes, client: str, now: float | None = None) -> str:
    """The header value a node adds to a request it forwards."""
    ts = int(time.time() if now is None else now)
    mac = _mac(secret, _FORWARDED, node, str(ts), client, method.upper(), path)
    return f"node={node}, ts={ts}, for={client}, sig={mac}"


def verify_forwarded(
    secret: bytes, value: str, method: str, path: bytes, now: float | None = None, max_age: float = MAX_AGE
) -> Forwarded | None:
    """Who forwarded this request, if `value` is a good signature of it; None if it is not."""
    fields = _fields(value)
    node, ts, client, sig = (fields.get(k) for k in ("node", "ts", "for", "sig"))
    if node is None or ts is None or client is None or sig is None or not _fresh(ts, now, max_age):
        return None
    expected = _mac(secret, _FORWARDED, node, ts, client, method.upper(), path)
    return Forwarded(node, client) if hmac.compare_digest(expected, sig) else None


def git_password(secret: bytes, node: str, repository: str, now: float | None = None) -> str:
    """The Basic password a node's git fetch of `repository` authenticates with."""
    ts = str(int(time.time() if now is None else now))
    return f"{_PASSWORD_PREFIX}{node}:{ts}:{_mac(secret, _GIT, node, ts, repository)}"


def is_git_password(password: str) -> bool:
    """Whether a Basic password is meant as a node's (and so is checked here, not as a token)."""
    return password.startswith(_PASSWORD_PREFIX)


def verify_git_password(
    secret: bytes, password: str, repository: str, now: float | None = None, max_age: float = GIT_PASSWORD_MAX_AGE
) -> str | None:
    """The node a git password of `repository` stands for, or None if it is not a good one."""
    if not is_git_password(password):
        return None
    node, _, rest = password.removeprefix(_PASSWORD_PREFIX).partition(":")
    ts, _, sig = rest.partition(":")
    if not node or not _fresh(ts, now, max_age):
        return None
    return node if hmac.compare_digest(_mac(secret, _GIT, node, ts, repository), sig) else None


def _mac(secret: bytes, purpose: bytes, *parts: str | bytes) -> str:
    # Newline-joined: no part (a node name, an address, a method, a path) holds a newline, so
    # two different lists never join into the same message.
    message = b"\n".join([purpose, *(p.encode() if isinstance(p, str) else p for p in parts)])
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _fields(value: str) -> dict[str, str]:
    fields = {}
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = item.strip()
    return fields


def _fresh(ts: str, now: float | None, max_age: float) -> bool:
    if not ts.isdigit():
        return False
    return abs((time.time() if now is None else now) - int(ts)) <= max_age

"""Webhooks: subscriptions, signatures, and one delivery attempt.

Each delivery is a POST of the event's JSON, signed as GitHub signs its webhooks:
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the secret>`.
A receiver recomputes it over the raw body and compares in constant time (`verify`); the
`X-Gitstore-Delivery` id stays the same across retries of one delivery, and the event id (the
feed cursor, also in `X-Gitstore-Event-Id`) lets a receiver drop a repeat.

No SSRF through webhooks: the target's host is resolved at every attempt and every address it
resolves to must be public unless `allow` names it (a CIDR or a host name); the connection goes
to the address that was checked (no second lookup a rebinding DNS server could answer
differently), and redirects are not followed. A subscription is refused at once when its host
is an address, or `localhost`, that is not allowed; a name is looked up only when delivering
(a request handler does not wait on DNS, and what a name resolves to then is what counts).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["EVENT_KINDS", "Allowlist", "Attempt", "check_subscription", "post", "sign", "verify"]

EVENT_KINDS = ("draft_changed", "published", "unpublished", "deleted", "discarded")
DRAFT_KINDS = frozenset({"draft_changed", "discarded"})  # only the preview right sees these
MIN_SECRET = 16
MAX_SECRET = 256
SIGNATURE_HEADER = "X-Hub-Signature-256"
_RESPONSE_KEPT = 64 * 1024  # read this much of an answer, to let the connection finish cleanly

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """The receiver's check: the header is the signature of these exact bytes."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Private, loopback and other non-public targets allowed despite being so
    (GITSTORE_WEBHOOK_ALLOW: comma-separated CIDRs and host names)."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Allowlist:
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def permits(self, host: str, address: Address) -> bool:
        if address.is_global and not address.is_multicast:
            return True
        return host.lower().rstrip(".") in self.hosts or any(address in net for net in self.networks)


def check_subscription(
    url: str, secret: str | None, events: Iterable[str], allow: Allowlist, *, drafts: bool
) -> list[dict[str, object]]:
    """Every problem with a subscription's fields, as `errors` entries (empty: fine)."""
    problems: list[dict[str, object]] = []
    events = list(events)
    unknown = [e for e in events if e != "*" and e not in EVENT_KINDS]
    if not events or unknown:
        problems.append(
            {"loc": ["events"], "msg": f"unknown event kinds {unknown}; use {list(EVENT_KINDS)} or ['*']"}
            if unknown
            else {"loc": ["events"], "msg": "name at least one event kind, or '*'"}
        )
    elif not drafts and DRAFT_KINDS & set(events):
        problems.append({"loc": ["events"], "msg": f"{sorted(DRAFT_KINDS & set(events))} need drafts: true"})
    if secret is not None and not (MIN_SECRET <= len(secret) <= MAX_SECRET):
        problems.append({"loc": ["secret"], "msg": f"a secret is {MIN_SECRET} to {MAX_SECRET} characters"})
    problem = url_problem(url, allow)
    if problem:
        problems.append({"loc": ["url"], "msg": problem})
    return problems


def url_problem(url: str, allow: Allowlist) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "a webhook URL is http:// or https:// with a host"
    if parts.username is not None or parts.password is not None:
        return "credentials in a webhook URL would be sent in the clear to every reader of the log; use the secret"
    if len(url) > 2048:
        return "longer than 2048 characters"
    host = parts.hostname
    address = _LOOPBACK if _is_localhost(host) else _literal(host)
    if address is not None and not allow.permits(host, address):
        return _refusal(host, address)
    return None


_LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _is_localhost(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")  # RFC 6761: always loopback


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def _refusal(host: str, address: Address) -> str:
    return (
        f"{host!r} is a private, loopback or reserved address ({address}); "
        "webhooks may reach it only if GITSTORE_WEBHOOK_ALLOW names it"
    )


def resolve(host: str, port: int, allow: Allowlist) -> Address:
    """The address to connect to: every address `host` resolves to must be allowed (a name
    answering one public and one private address must not reach the private one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"{host!r} does not resolve") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [a for a in addresses if not allow.permits(host, a)]
    if refused:
        raise OSError(_refusal(host, refused[0]))
    return addresses[0]


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    response_code: int | None
    duration_ms: float
    error: str | None


def post(url: str, body: bytes, headers: dict[str, str], allow: Allowlist, *, timeout: float = 10.0) -> Attempt:
    """One POST of `body` to `url`: ok on a 2xx answer within `timeout`. Never raises."""
    started = time.monotonic()
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        address = resolve(host, port, allow)
        conn = _connection(host, str(address), port, https, timeout)
        try:
            conn.request("POST", target, body=body, headers={"Host": parts.netloc.rsplit("@", 1)[-1], **headers})
            answer = conn.getresponse()
            answer.read(_RESPONSE_KEPT)
            code = answer.status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(False, None, _ms(started), f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= code < 300
    return Attempt(ok, code, _ms(started), None if ok else f"answered {code}")


def _connection(host: str, address: str, port: int, https: bool, timeout: float) -> http.client.HTTPConnection:
    if not https:
        return http.client.HTTPConnection(address, port, timeout=timeout)
    context = ssl.create_default_context()

    class _Pinned(http.client.HTTPSConnection):
        # Connect to the address that was checked, but verify the certificate for the name.
        def connect(self) -> None:
            sock = socket.create_connection((address, port), timeout)
            self.sock = context.wrap_socket(sock, server_hostname=host)

    return _Pinned(host, port, timeout=timeout, context=context)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)

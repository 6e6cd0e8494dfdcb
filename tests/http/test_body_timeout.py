"""Request bodies that never arrive (issue 18): a client that declares a body and then stalls,
or drips it a byte at a time, gets 408 once GITSTORE_BODY_TIMEOUT has passed and its connection
closed, on every route that reads a body, and nothing is written. Against a real server
process over raw sockets, since the stall is in the transport."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gitstore import Store, content
from tests.conftest import ADA, git
from tests.serving import start_server

DECLARED = 100
# (method, path, content type) of each route that reads a body the way its kind does.
ROUTES = {
    "JSON write": ("PUT", "/repos/demo/entities/new-page", "application/json"),
    "bundle import (spooled)": ("POST", "/repos/demo/import", "application/gzip"),
    "git fetch": ("POST", "/git/demo.git/git-upload-pack", "application/x-git-upload-pack-request"),
}
BODY = b'{"type": "page", "title": "' + b"t" * (DECLARED - 29) + b'"}'
assert len(BODY) == DECLARED


@dataclass
class Served:
    url: str
    data: Path

    def refs(self) -> str:
        return git(self.data / "demo.git", "for-each-ref")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("body-timeout") / "data"
    content.put_draft(Store(data).create_repository("demo"), "intro", {"type": "page", "title": "Hi"}, author=ADA)
    proc, url = start_server(data, env={"GITSTORE_BODY_TIMEOUT": "1"})
    try:
        yield Served(url, data)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def connect(url: str, route: str, length: int = DECLARED, extra: str = "") -> socket.socket:
    """A connection that has sent the headers (and `extra` ones) of a request on `route`
    declaring `length` bytes."""
    method, path, media_type = ROUTES[route]
    parts = urlsplit(url)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {media_type}\r\n"
    conn.sendall(f"{head}{extra}Content-Length: {length}\r\n\r\n".encode())
    return conn


def answer(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Everything the server sends until it closes the connection (a socket timeout if it
    never does): status, headers, body."""
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def assert_timed_out(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 408, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert json.loads(body)["type"] == "urn:gitstore:problem:request-timeout"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("sent", [0, 30], ids=["no body", "part of the body"])
def test_a_stalled_body_is_408_and_the_connection_closed(served: Served, route: str, sent: int) -> None:
    before = served.refs()
    with connect(served.url, route) as conn:
        conn.sendall(BODY[:sent])
        assert_timed_out(*answer(conn))
    assert served.refs() == before


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_dripped_a_byte_at_a_time_is_cut_off_before_it_completes(served: Served, route: str) -> None:
    # A byte every 0.3 s would finish in 30 s; no single gap is long, so only a bound on the
    # whole read stops it.
    before = served.refs()
    with connect(served.url, route) as conn:
        for sent in range(DECLARED):
            if select.select([conn], [], [], 0.3)[0]:
                break  # the server answered
            conn.sendall(BODY[sent : sent + 1])
        assert sent < DECLARED - 1, "the server waited for the whole dripped body"
        assert_timed_out(*answer(conn))
    assert served.refs() == before


def test_a_large_body_arriving_steadily_is_not_cut_off(served: Served) -> None:
    # 8 MiB in about 2 s: longer than the 1 s timeout, but each MiB earns another second.
    size, piece = 8 * 1024 * 1024, 512 * 1024
    with connect(served.url, "bundle import (spooled)", length=size, extra="Connection: close\r\n") as conn:
        for _ in range(size // piece):
            conn.sendall(b"\0" * piece)
            select.select([conn], [], [], 0.125)
        status, _, body = answer(conn)
    assert status == 422 and json.loads(body)["type"] == "urn:gitstore:problem:invalid-bundle"

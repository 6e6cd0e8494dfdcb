"""A real HTTP receiver for webhooks on loopback, in the test process: each path answers as it
is told (fail the first n tries, or always), records every request, and checks signatures the
way the README tells a receiver to, with the standard library alone."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """The documented check: HMAC-SHA256 of the raw body, keyed by the secret, compared in
    constant time with X-Hub-Signature-256 (`sha256=<hex>`)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


class Receiver:
    def __init__(self) -> None:
        self.failures: dict[str, int] = {}  # path -> tries to refuse first (-1: always)
        self.secrets: dict[str, str] = {}  # path -> secret its requests must be signed with
        self.requests: list[dict[str, Any]] = []
        self._guard = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer(self.path, body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _answer(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        with self._guard:
            left = self.failures.get(path, 0)
            signed = signature_ok(self.secrets.get(path, ""), body, headers.get("X-Hub-Signature-256"))
            status = 401 if not signed else 500 if left != 0 else 200
            if left > 0:
                self.failures[path] = left - 1
            self.requests.append(
                {
                    "path": path,
                    "status": status,
                    "body": orjson.loads(body),
                    "raw": body,
                    "headers": headers,
                    "at": time.time(),
                }
            )
        return status

    def got(self, path: str, *, status: int | None = None) -> list[dict[str, Any]]:
        with self._guard:
            return [r for r in self.requests if r["path"] == path and (status is None or r["status"] == status)]

    def wait_for(self, done: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

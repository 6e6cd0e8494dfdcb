"""A plain smart-HTTP git server on loopback, for tests of copies between two stores without
nodes: `git upload-pack --stateless-rpc` behind http.server, protocol v0 and v2, no auth."""

from __future__ import annotations

import gzip
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """Serve each bare repository `<root>/<name>.git` at `<url>/<name>.git`; yields the url."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path, _, query = self.path.partition("?")
            if not path.endswith("/info/refs") or "service=git-upload-pack" not in query:
                self.send_error(404)
                return
            out = self._upload_pack(path.removesuffix("/info/refs"), b"", "--advertise-refs")
            v2 = "version=2" in self.headers.get("Git-Protocol", "")
            head = b"" if v2 else b"001e# service=git-upload-pack\n0000"
            self._answer("application/x-git-upload-pack-advertisement", head + out)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":  # git compresses larger requests
                body = gzip.decompress(body)
            out = self._upload_pack(self.path.removesuffix("/git-upload-pack"), body)
            self._answer("application/x-git-upload-pack-result", out)

        def _upload_pack(self, repo: str, body: bytes, *extra: str) -> bytes:
            env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}
            if "version=2" in self.headers.get("Git-Protocol", ""):
                env["GIT_PROTOCOL"] = "version=2"
            args = ["git", "upload-pack", "--stateless-rpc", *extra, str(root / repo.lstrip("/"))]
            done = subprocess.run(args, input=body, env=env, capture_output=True)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.decode(errors="replace"))
            return done.stdout

        def _answer(self, media_type: str, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

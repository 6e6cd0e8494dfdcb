"""A real gitstore server process on a free loopback port, for tests that need the real thing
(git clients, restarts, kill -9)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from api.main import UVICORN_APP

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # type: ignore[no-any-return]


def start_server(
    data: Path,
    *,
    anonymous: str = "none",
    port: int | None = None,
    env: dict[str, str] | None = None,
    app: tuple[str, ...] = UVICORN_APP,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start uvicorn on `data` (with `env` added to its environment; `app` names the app
    factory) and wait until /health answers. Returns (process, base url)."""
    port = port or free_port()
    env = (
        os.environ
        | {"GITSTORE_DATA": str(data), "GITSTORE_SAMPLES": "0", "GITSTORE_ANONYMOUS": anonymous}
        | (env or {})
    )
    log_path = data.parent / f"server-{port}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).close()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log_path.read_text()) from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")

"""Real gitstore nodes of a cluster: each a uvicorn process on its own loopback port with its
own data directory, all pointed at one PostgreSQL database (the control plane)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.serving import free_port, start_server


@dataclass
class Node:
    name: str
    data: Path
    port: int
    dsn: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        env = {
            "GITSTORE_CLUSTER_DSN": self.dsn,
            "GITSTORE_NODE_NAME": self.name,
            "GITSTORE_NODE_URL": self.url,
        } | self.env
        self.proc, _ = start_server(self.data, port=self.port, env=env)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9: no clean stop, no last heartbeat."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


def nodes(base: Path, dsn: str, count: int = 3, *, env: dict[str, str] | None = None) -> list[Node]:
    """`count` nodes (not started) named node-1, node-2, ..., data under `base`."""
    made = []
    for i in range(1, count + 1):
        data = base / f"node-{i}" / "data"
        data.mkdir(parents=True, exist_ok=True)
        made.append(Node(f"node-{i}", data, free_port(), dsn, dict(env or {})))
    return made

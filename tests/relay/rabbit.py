"""A real RabbitMQ node of the test's own: its own node name, ports (AMQP, distribution, epmd)
on loopback, data and log directories, and Erlang cookie, so it never meets the machine's own
broker (Debian may have started one on install) or another test run's."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.serving import free_port

# The Debian wrapper on PATH switches to the rabbitmq user when run as root (and with it HOME,
# and so the cookie); the script it wraps runs as whoever calls it.
_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class Rabbit:
    def __init__(self, base: Path, *, port: int | None = None) -> None:
        self.base = base
        self.port = port or free_port()
        self.node = f"gitstore-test-{self.port}@localhost"
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16))
            cookie.chmod(0o400)
        (base / "enabled_plugins").write_text("[].\n")
        self.epmd_port = free_port()
        self.env = os.environ | {
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),  # none there: defaults, whatever /etc says
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self, timeout: float = 90.0) -> None:
        server = _SERVER if os.path.exists(_SERVER) else shutil.which("rabbitmq-server") or "rabbitmq-server"
        with open(self.base / "server.out", "ab") as out:
            self.proc = subprocess.Popen(
                [server], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {(self.base / 'server.out').read_text()[-3000:]}")
            if self._speaks_amqp():
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"rabbitmq did not start: {(self.base / 'server.out').read_text()[-3000:]}")

    def _speaks_amqp(self) -> bool:
        """The broker answers an AMQP protocol header with its Connection.Start frame."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"AMQP\x00\x00\x09\x01")
                return s.recv(8)[:1] == b"\x01"
        except OSError:
            return False

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node (and the epmd it started, on its own port)."""
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run([_CTL, "-n", self.node, "stop"], env=self.env, capture_output=True, timeout=timeout)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env, capture_output=True, timeout=10)

    def kill(self) -> None:
        """A crash: SIGKILL to the whole node."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

"""A real PostgreSQL server of the test's own: `initdb` into a temporary directory, `pg_ctl`
on a free loopback port, sockets in that directory. PostgreSQL refuses to run as root, and CI
runs as root, so there the server runs as the `postgres` user (the folder is handed to it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.serving import free_port

BIN = Path(os.environ.get("GITSTORE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (BIN / "initdb").exists() and (os.geteuid() != 0 or shutil.which("runuser") is not None)


class Postgres:
    """One server; `dsn` reaches its `postgres` database as the `postgres` superuser."""

    def __init__(self, base: Path, *, port: int | None = None) -> None:
        self.base = base
        self.data = base / "pgdata"
        self.port = port or free_port()
        self.proc_log = base / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.base, _uid("postgres"), _gid("postgres"))
        self._run(
            [str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]
        )

    def start(self, timeout: float = 60.0) -> None:
        if not self.data.exists():
            self.init()
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.proc_log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def kill(self) -> None:
        """kill -9 of the postmaster: PostgreSQL going away while serving."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), 9)
            time.sleep(0.2)

    def create_database(self, name: str) -> str:
        self._run([str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name])
        return self.dsn_for(name)

    def _run(self, argv: Sequence[str], *, check: bool = True) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, cwd="/")
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout.decode()} {done.stderr.decode()}")


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _gid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid

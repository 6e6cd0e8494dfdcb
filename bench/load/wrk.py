"""Running wrk with one of the Lua scenarios in lua/, and reading back what it measured."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

LUA = Path(__file__).with_name("lua")
# A write waits for fsync and for the repository's drafts lock: give it far longer than wrk's
# default 2 s before counting it as a timeout.
TIMEOUT = "10s"


@dataclass(frozen=True, slots=True)
class Load:
    """One wrk run of lua/<script>.lua: `threads` threads sharing `connections` connections."""

    name: str
    script: str
    threads: int
    connections: int

    @property
    def settings(self) -> str:
        return f"-t{self.threads} -c{self.connections}"


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit(
            "bench.load drives the server with wrk, which is not installed.\n"
            "  Debian/Ubuntu: apt-get install -y wrk    macOS: brew install wrk"
        )


def run_wrk(load: Load, url: str, seconds: int, work: Path, env: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Run `load` against `url`; returns its summary and the commits it saw acknowledged,
    "ref commit" lines in the order each thread saw them."""
    result, acked = work / f"{load.name}.json", work / f"{load.name}.acked"
    files = {"LOAD_RESULT": str(result), "LOAD_ACKED": str(acked), "LOAD_ENTITIES": str(entities_file(work, load))}
    command = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{seconds}s", f"--timeout={TIMEOUT}"]
    subprocess.run(
        [*command, "-s", str(LUA / f"{load.script}.lua"), url],
        env=os.environ | env | files | {"LUA_PATH": f"{LUA}/?.lua;;"},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return summarise(orjson.loads(result.read_bytes()), load), acked.read_text().splitlines()


def entities_file(work: Path, load: Load) -> Path:
    """Where a load that writes finds the entities each of its threads owns."""
    return work / f"{load.name}.entities"


def summarise(raw: dict[str, Any], load: Load) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    statuses = {int(float(code)): int(n) for code, n in sorted(raw["statuses"].items())}
    socket_errors = {kind: int(n) for kind, n in raw["errors"].items() if kind != "status" and n}
    return {
        "wrk": load.settings,
        "seconds": round(seconds, 2),
        "requests": int(raw["requests"]),
        "req_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": _ms(raw["latency_us"]["p50"]),
        "p90_ms": _ms(raw["latency_us"]["p90"]),
        "p99_ms": _ms(raw["latency_us"]["p99"]),
        "max_ms": _ms(raw["latency_us"]["max"]),
        "statuses": {str(code): n for code, n in statuses.items()},
        # Neither 2xx nor 3xx, counting answers that never came (socket errors, timeouts).
        "failed": sum(n for code, n in statuses.items() if not 200 <= code < 400) + sum(socket_errors.values()),
        "server_errors": sum(n for code, n in statuses.items() if code >= 500),
        "socket_errors": socket_errors,
        "by_kind": {kind: _kind(measured, seconds) for kind, measured in sorted(raw["kinds"].items())},
        "counters": {name: int(n) for name, n in raw["counters"].items()},
    }


def _kind(measured: dict[str, float], seconds: float) -> dict[str, float]:
    return {
        "requests": int(measured["count"]),
        "req_per_s": round(measured["count"] / seconds, 1),
        "p50_ms": _ms(measured["p50_us"]),
        "p99_ms": _ms(measured["p99_us"]),
        "max_ms": _ms(measured["max_us"]),
    }


def _ms(microseconds: float) -> float:
    return round(microseconds / 1000, 2)

"""What a held repository lock costs everyone else (issue 18).

    python -m bench.lock_stall [--writers 60] [--seconds 10]

Serves two repositories (one uvicorn worker, the service's defaults), holds the drafts lock
of one of them from this process the whole time, keeps `--writers` threads writing to it (each
waits out the Retry-After of a 503 before it writes again; `--hammer`: it does not), and
meanwhile asks `/health` and a live entity of the other repository one request after another,
each on a new connection. Prints the latency of those two (p50, p99, max, in ms) beside the
same figures with nothing held and no writers, and how the writers were answered while the
lock was held.
"""

from __future__ import annotations

import argparse
import fcntl
import http.client
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.git_access import serve
from gitstore import Store

PAGE = orjson.dumps({"type": "page", "title": "Page", "fields": {"html": "<p>hi</p>\n"}})
PROBES = ("/health", "/repos/other/entities/page")


def request(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, str | None]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        conn.close()


def probe(url: str, seconds: float) -> dict[str, Any]:
    """Latencies of the probes, asked in turn for `seconds`."""
    took: dict[str, list[float]] = {path: [] for path in PROBES}
    statuses: Counter[str] = Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for path in PROBES:
            start = time.perf_counter()
            status, _ = request(url, "GET", path)
            took[path].append(time.perf_counter() - start)
            statuses[f"{path} {status}"] += 1
    return {path: summary(times) for path, times in took.items()} | {"statuses": dict(statuses)}


def summary(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "max_ms": round(ms[-1], 2),
    }


def run(writers: int, seconds: float, hammer: bool, work: Path) -> dict[str, Any]:
    store = Store(work / "data")
    site = store.create_repository("site")
    store.create_repository("other")
    proc, url = serve(work / "data", {"GITSTORE_RATE_LIMIT": ""})
    try:
        assert request(url, "PUT", "/repos/other/entities/page", PAGE)[0] == 201
        assert request(url, "POST", "/repos/other/entities/page/publish")[0] == 200
        results: dict[str, Any] = {"writers": writers, "hammer": hammer, "idle": probe(url, seconds)}
        answers: Counter[str] = Counter()
        stop = threading.Event()

        def write(n: int) -> None:
            while not stop.is_set():
                status, retry_after = request(url, "PUT", f"/repos/site/entities/w{n}", PAGE)
                answers[f"{status} Retry-After={retry_after}"] += 1
                if retry_after is not None and not hammer:
                    stop.wait(float(retry_after))

        fd = os.open(site.storage.drafts_lock.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(1)  # every writer is in
            results["locked"] = probe(url, seconds)
        finally:
            results["writer_answers_while_held"] = dict(answers)
            stop.set()
            os.close(fd)
            for thread in threads:
                thread.join(60)
        return results
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--hammer", action="store_true", help="writers retry at once instead of after Retry-After")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitstore-bench-lock-stall-") as work:
        found = run(args.writers, args.seconds, args.hammer, Path(work))
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

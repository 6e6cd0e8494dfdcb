"""A repository whose drafts lock stays held (a long import, a stuck process) must not stall the
rest of the service: its writers are refused with 503 after a bounded wait, while `/health`
and reads of other repositories keep answering (issue 18).

A real server, a real flock held by this process, and 60 real concurrent writers.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2 as httpx

from gitstore import Store
from tests.conftest import fsck_strict, held_flock
from tests.serving import start_server

WRITERS = 60
# A probe stalled behind the lock waits as long as the writers do; a probe on a busy machine
# can take a couple of seconds without being stalled. The bound sits between the two.
LOCK_WAIT = 8.0
PROBE_BOUND = LOCK_WAIT / 2
PAGE = {"type": "page", "title": "Page", "fields": {"html": "<p>hi</p>\n"}}


def test_a_held_drafts_lock_stalls_neither_health_nor_other_repositories(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data)
    site = store.create_repository("site")
    store.create_repository("other")
    proc, url = start_server(data, env={"GITSTORE_LOCK_WAIT": str(LOCK_WAIT)})
    try:
        httpx.put(f"{url}/repos/other/entities/page", json=PAGE, timeout=10).raise_for_status()
        httpx.post(f"{url}/repos/other/entities/page/publish", timeout=10).raise_for_status()

        writes: dict[int, object] = {}

        def writer(n: int) -> None:
            start = time.monotonic()
            try:
                r = httpx.put(f"{url}/repos/site/entities/w{n}", json=PAGE, timeout=LOCK_WAIT + 15)
            except httpx.HTTPError as exc:
                writes[n] = (type(exc).__name__, time.monotonic() - start)
                return
            writes[n] = (r.status_code, r.headers.get("retry-after"), r.headers.get("content-type"))

        probes: list[tuple[str, object, float]] = []
        with held_flock(site.storage.drafts_lock.path):
            threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # the writers are in: queued on the lock, or refused
            give_up = time.monotonic() + LOCK_WAIT + 15
            while time.monotonic() < give_up and (len(probes) < 20 or any(t.is_alive() for t in threads)):
                for path in ("/health", "/repos/other/entities/page"):
                    start = time.monotonic()
                    try:
                        status: object = httpx.get(url + path, timeout=LOCK_WAIT).status_code
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    probes.append((path, status, time.monotonic() - start))
                time.sleep(0.02)
            for t in threads:
                t.join(timeout=LOCK_WAIT + 20)

        slow = [p for p in probes if p[1] != 200 or p[2] > PROBE_BOUND]
        assert not slow, f"{len(slow)} of {len(probes)} probes failed or took over {PROBE_BOUND} s: {slow[:6]}"
        assert len(writes) == WRITERS
        refused = [w for w in writes.values() if w == (503, "1", "application/problem+json")]
        assert len(refused) == WRITERS, sorted(set(map(str, writes.values())))

        # Nothing a refused writer sent was written; with the lock free, writes land again.
        drafts = httpx.get(f"{url}/repos/site/entities?state=draft", timeout=10).json()
        assert drafts["items"] == []
        r = httpx.put(f"{url}/repos/site/entities/after", json=PAGE, timeout=10)
        assert r.status_code == 201, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    fsck_strict(site.path)

"""Git access: clone and fetch over smart HTTP, and what the live-only mirror adds to publishing.

    python -m bench.git_access [--entities 2000] [--versions 10]

Builds a repository of N entities x V versions (20,000 commits by default), serves it with
uvicorn on a free loopback port, and measures: a protocol v2 clone (time, bytes), an
incremental fetch after one publish, the live-only mirror's sync next to a single-entity
publish, and a clone again after `gitstore gc` has packed the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from api.main import UVICORN_APP
from gitstore import Author, Store, content
from gitstore.publishing import api as publishing
from gitstore.publishing.api import sync_live_mirror
from gitstore.upkeep.api import gc

ROOT = Path(__file__).resolve().parents[1]
ME = Author("Bench", "bench@example.org")


def build(store: Store, n: int, versions: int) -> None:
    repo = store.create_repository("site")
    for v in range(1, versions + 1):
        for i in range(n):
            content.put_draft(
                repo,
                f"page-{i:05d}",
                {"type": "page", "title": f"Page {i}", "fields": {"body": f"Body of {i}\nrevision {v}\n"}},
                author=ME,
            )
        if v in (versions // 2, versions):
            content.publish_all_drafts(repo, author=ME)
        print(f"  built version {v}/{versions}", file=sys.stderr)


def serve(data: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"GITSTORE_DATA": str(data), "GITSTORE_SAMPLES": "0"} | (env or {})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            *UVICORN_APP,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def run(n: int, versions: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"entities": n, "commits_on_entity_branches": n * versions}
    store = Store(work / "data")
    start = time.perf_counter()
    build(store, n, versions)
    results["build_seconds"] = round(time.perf_counter() - start, 1)
    repo = store.repository("site")

    # Mirror upkeep next to single-entity publish time. The service runs the sync after the
    # publish response (and on demand before serving a reader), so it adds nothing to publish
    # latency; this measures what it costs when it runs.
    sync_live_mirror(repo)
    publishes, syncs = [], []
    for i in range(50):
        key = f"page-{i:05d}"
        content.patch_draft(repo, key, {"title": f"Edited {i}"}, author=ME)
        t = time.perf_counter()
        content.publish(repo, [publishing.PublishTarget(key)], author=ME)
        publishes.append(time.perf_counter() - t)
        t = time.perf_counter()
        sync_live_mirror(repo)
        syncs.append(time.perf_counter() - t)
    results["publish_one_ms_median"] = round(statistics.median(publishes) * 1000, 2)
    results["mirror_sync_ms_median"] = round(statistics.median(syncs) * 1000, 2)
    results["mirror_sync_vs_publish"] = round(statistics.median(syncs) / statistics.median(publishes), 2)

    proc, url = serve(store.data_dir)
    try:
        clone = work / "clone"
        t = time.perf_counter()
        git("-c", "protocol.version=2", "clone", "-q", "--bare", f"{url}/git/site.git", str(clone))
        results["clone_v2_seconds"] = round(time.perf_counter() - t, 3)
        results["clone_bytes"] = sum(p.stat().st_size for p in (clone / "objects").rglob("*") if p.is_file())
        results["clone_commits"] = int(git("--git-dir", str(clone), "rev-list", "--count", "--all").strip())
        report = gc(repo)
        results["gc_seconds"] = report.seconds
        clone_after = work / "clone-after-gc"
        t = time.perf_counter()
        git("-c", "protocol.version=2", "clone", "-q", "--bare", f"{url}/git/site.git", str(clone_after))
        results["clone_v2_after_gc_seconds"] = round(time.perf_counter() - t, 3)
        content.patch_draft(repo, "page-00001", {"title": "One more"}, author=ME)
        content.publish(repo, [publishing.PublishTarget("page-00001")], author=ME)
        t = time.perf_counter()
        git("--git-dir", str(clone), "-c", "protocol.version=2", "fetch", "-q", "origin", "+refs/heads/*:refs/heads/*")
        results["incremental_fetch_seconds"] = round(time.perf_counter() - t, 3)
    finally:
        proc.terminate()
        proc.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-git-"))
    try:
        print(orjson.dumps(run(args.entities, args.versions, work), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

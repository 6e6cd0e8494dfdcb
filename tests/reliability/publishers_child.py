"""Child process for the kill -9 test of group publishes: publisher threads, each editing and
publishing its own entities one at a time, so their publishes queue for the publish lock and
land in rounds of several commits. A timer SIGKILLs the process at a random moment."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from gitstore import Author, Store, content
from gitstore.entities import api as entities
from gitstore.publishing import api as publishing

THREADS = 6
KEYS = [[f"t{thread}-{n}" for n in range(3)] for thread in range(THREADS)]
ME = Author("Crash Test", "crash@example.org")
_print = threading.Lock()


def publisher(data_dir: str, keys: list[str]) -> None:
    repo = Store(data_dir).repository("demo")
    for n in range(100_000):
        key = keys[n % len(keys)]
        title = int(entities.get_entity(repo, key, state="draft").title.removeprefix("round-")) + 1
        content.patch_draft(repo, key, {"title": f"round-{title}"}, author=ME)
        content.publish(repo, [publishing.PublishTarget(key)], author=ME)
        with _print:
            print(f"published {key} {title}", flush=True)


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    threading.Timer(rng.uniform(0.2, 1.0), os.kill, (os.getpid(), signal.SIGKILL)).start()
    threads = [threading.Thread(target=publisher, args=(data_dir, keys), daemon=True) for keys in KEYS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=110)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

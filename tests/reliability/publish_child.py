"""Child process for the kill -9 test: edit every entity, then publish them all at once, in a
loop. A timer thread SIGKILLs the process at a random moment, usually inside a publish."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from gitstore import Author, Store, content
from gitstore.entities import api as entities
from gitstore.publishing import api as publishing

KEYS = [f"doc-{n:02d}" for n in range(40)]
ME = Author("Crash Test", "crash@example.org")


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    repo = Store(data_dir).repository("demo")
    start = int(entities.get_entity(repo, KEYS[0], state="draft").title.removeprefix("round-")) + 1
    for rnd in range(start, start + 1000):
        for key in KEYS:
            content.patch_draft(repo, key, {"title": f"round-{rnd}"}, author=ME)
        killer = threading.Timer(rng.uniform(0, 0.06), os.kill, (os.getpid(), signal.SIGKILL))
        killer.start()
        content.publish(repo, [publishing.PublishTarget(k) for k in KEYS], author=ME)
        killer.cancel()
        print(f"published {rnd}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

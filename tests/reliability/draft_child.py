"""Child process for the draft-write kill -9 test. It alternates single writes (each to one
of SINGLES) with batches that rewrite every one of BATCHED in one atomic batch, and prints each
acknowledgement. Every third single write it folds the changes waiting into `draft`. A timer
SIGKILLs it at a random moment: inside a single write, a fold, a batch, or between them."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from gitstore import Author, Store, content
from gitstore.entities import api as entities
from gitstore.entities.api import DraftChange
from gitstore.entities.draft_branch import fold_drafts

ME = Author("Crash Test", "crash@example.org")
SINGLES = [f"single-{n}" for n in range(8)]
BATCHED = [f"batched-{n}" for n in range(6)]


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    repo = Store(data_dir).repository("demo")
    start = int(entities.get_entity(repo, BATCHED[0], state="draft").title.removeprefix("batch-")) + 1
    threading.Timer(rng.uniform(0.02, 0.25), os.kill, (os.getpid(), signal.SIGKILL)).start()
    for n in range(start, start + 10_000):
        key = rng.choice(SINGLES)
        written = content.patch_draft(repo, key, {"fields": {"n": n}}, author=ME)
        print(f"single {key} {written.entity.commit}", flush=True)
        if n % 3 == 0:
            fold_drafts(repo)  # the service's own fold, so that kills land inside it too
        title = f"batch-{n}"
        changes = [DraftChange(k, lambda c, t=title: (c.document._replace(title=t), False)) for k in BATCHED]
        content.write_drafts(repo, changes, author=ME, summary=f"Batch {n}")
        print(f"batch {n}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

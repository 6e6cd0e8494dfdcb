"""Child process for the journal's kill -9 tests (`GITSTORE_FSYNC=journal`). It creates and
updates entities one at a time, printing each acknowledgement, folds now and then, and
checkpoints the journal every few writes (`checkpoints`) or only in the background (tiny
`GITSTORE_JOURNAL_BYTES`). A timer SIGKILLs it at a random moment: inside an append, a
checkpoint's rename or flush, a fold, or between them."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from gitstore import Author, Store, content
from gitstore.entities.draft_branch import fold_drafts
from gitstore.storage import journal

ME = Author("Crash Test", "crash@example.org")
KEYS = [f"page-{n}" for n in range(6)]


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    repo = Store(data_dir).repository("demo")
    checkpoints = os.environ.get("JOURNAL_CHILD_CHECKPOINTS") == "1"
    threading.Timer(rng.uniform(0.02, 0.3), os.kill, (os.getpid(), signal.SIGKILL)).start()
    for n in range(10_000):
        if n % 2:
            key = f"new-{seed}-{n}"
            written = content.put_draft(repo, key, {"type": "page", "title": key}, author=ME)
        else:
            key = rng.choice(KEYS)
            written = content.patch_draft(repo, key, {"fields": {"n": n}}, author=ME)
        print(f"single {key} {written.entity.commit}", flush=True)
        if n % 5 == 4:
            fold_drafts(repo)
        if checkpoints and n % 3 == 2:
            journal.checkpoint(str(repo.path))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

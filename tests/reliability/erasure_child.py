"""Child process for the kill -9 test of erasure: erase every version of `secret`, with a timer
thread that SIGKILLs the process at a random moment, usually inside the erasure."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from gitstore import Author, Store
from gitstore.erasure import erase

ME = Author("Crash Test", "crash@example.org")


def main(data_dir: str, seed: int, earliest: float, latest: float) -> None:
    repo = Store(data_dir).repository("demo")
    threading.Timer(random.Random(seed).uniform(earliest, latest), os.kill, (os.getpid(), signal.SIGKILL)).start()
    erase(repo, "secret", author=ME, reason="kill -9 test")
    print("erased", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the test reads every run as killed; this one after the erasure


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))

"""Child process for the import kill -9 test. Each round imports (and publishes) a bundle of 40
components and a unit that pins an older version of the first one, carried in the bundle, so
the batch writes two versions of that component and one pack. A timer SIGKILLs the process at a
random moment: reading, checking, packing, at the commit point, or publishing."""

from __future__ import annotations

import dataclasses
import io
import os
import random
import signal
import sys
import threading

from gitstore import Author, Store
from gitstore.bundles.api import import_bundle
from gitstore.bundles.format import NDJSON, Version, fingerprint, version_line
from gitstore.entities.document import Member, parse_document

ME = Author("Crash Test", "crash@example.org")
COMPONENTS = [f"c-{n}" for n in range(40)]


def bundle(rnd: int) -> bytes:
    def component(key: str, title: str) -> Version:
        return Version(key, parse_document({"type": "component.html", "title": title}), "")

    old = component(COMPONENTS[0], f"pinned round-{rnd}")
    pin = fingerprint(old.key, old.content)
    unit = parse_document({"type": "unit", "title": f"round-{rnd}"})._replace(
        members=(Member(COMPONENTS[0], pin), *(Member(k) for k in COMPONENTS[1:]))
    )
    versions = [component(k, f"round-{rnd}") for k in COMPONENTS]
    versions += [Version("unit", unit, ""), dataclasses.replace(old, pin=pin)]
    return b"".join(version_line(v) for v in versions)


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    repo = Store(data_dir).repository("demo")
    for rnd in range(seed * 1000, seed * 1000 + 1000):
        killer = threading.Timer(rng.uniform(0, 0.3), os.kill, (os.getpid(), signal.SIGKILL))
        killer.start()
        import_bundle(repo, io.BytesIO(bundle(rnd)), NDJSON, author=ME, publish=rnd % 2 == 1)
        print(f"imported {rnd}", flush=True)
        killer.cancel()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

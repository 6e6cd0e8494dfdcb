"""Child process for the container kill -9 test. Each round rewrites every component of a
4-level course in one draft batch, then publishes the course from its root. A timer SIGKILLs
the process at a random moment, inside the batch, the publish, or between them."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading

from gitstore import Author, ContentRepository, Store, content
from gitstore.entities import api as entities
from gitstore.entities.api import DraftChange
from gitstore.publishing.api import PublishTarget

ME = Author("Crash Test", "crash@example.org")
UNITS = [f"u-{s}-{ss}-{u}" for s in range(2) for ss in range(2) for u in range(2)]
COMPONENTS = [f"c-{unit[2:]}-{c}" for unit in UNITS for c in range(5)]


def build(repo: ContentRepository, author: Author) -> None:
    """course > 2 sections > 2 subsections > 2 units > 5 components, all published."""

    def rows(keys: list[str]) -> list[dict[str, str | None]]:
        return [{"key": k, "pin": None} for k in keys]

    for key in COMPONENTS:
        content.put_draft(repo, key, {"type": "component", "title": "round-0"}, author=author)
    for unit in UNITS:
        members = rows([c for c in COMPONENTS if c.startswith(f"c-{unit[2:]}-")])
        content.put_draft(repo, unit, {"type": "unit", "title": unit, "members": members}, author=author)
    for s in range(2):
        for ss in range(2):
            units = rows([u for u in UNITS if u.startswith(f"u-{s}-{ss}-")])
            content.put_draft(
                repo, f"ss-{s}-{ss}", {"type": "subsection", "title": "ss", "members": units}, author=author
            )
        subs = rows([f"ss-{s}-{ss}" for ss in range(2)])
        content.put_draft(repo, f"s-{s}", {"type": "section", "title": "s", "members": subs}, author=author)
    sections = rows([f"s-{s}" for s in range(2)])
    content.put_draft(repo, "course", {"type": "course", "title": "Course", "members": sections}, author=author)
    content.publish(repo, [PublishTarget("course")], author=author)


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    repo = Store(data_dir).repository("demo")
    start = int(entities.get_entity(repo, COMPONENTS[0], state="draft").title.removeprefix("round-")) + 1
    for rnd in range(start, start + 1000):
        killer = threading.Timer(rng.uniform(0, 0.12), os.kill, (os.getpid(), signal.SIGKILL))
        killer.start()
        title = f"round-{rnd}"
        changes = [DraftChange(k, lambda c, t=title: (c.document._replace(title=t), False)) for k in COMPONENTS]
        content.write_drafts(repo, changes, author=ME, summary=f"Round {rnd}")
        print(f"drafted {rnd}", flush=True)
        content.publish(repo, [PublishTarget("course")], author=ME)
        print(f"published {rnd}", flush=True)
        killer.cancel()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""The background housekeeping task: every `housekeeping_seconds`, one `maintain` round for
each repository, in a worker thread so requests never wait for it.

Each worker process runs the task; a round that finds another process at work in a repository
skips it (gitstore.housekeeping.maintain), so two workers never pack the same repository twice.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from gitstore import Store
from gitstore.housekeeping import maintain

log = logging.getLogger("gitstore.housekeeping")


async def keep_house(store: Store, every_seconds: float) -> None:
    """Run until cancelled."""
    while True:
        await asyncio.sleep(every_seconds)
        for repo in await run_in_threadpool(store.repositories):
            try:
                report = await run_in_threadpool(maintain, repo)
            except Exception:  # one repository's trouble must not end housekeeping for the rest
                log.exception("housekeeping failed in %s", repo.name)
                continue
            if report.refs_packed or report.repacked or report.removed_locks:
                log.info("housekeeping in %s: %s", repo.name, report)

"""Background tasks, in worker threads so requests never wait for them.

- Every `housekeeping_seconds`, one `maintain` round for each repository. Each worker process
  runs it; a round that finds another process at work in a repository skips it
  (gitstore.upkeep.packing.maintain), so two workers never pack the same repository twice.
- Every `fold_seconds`, draft changes are folded into `refs/heads/draft` in each repository
  this process has open (gitstore.entities.draft_branch). Clones, exports, the event feed and
  publishes fold first anyway; this keeps `GET /repos/{repo}` and a bare-repository reader close
  behind, and each fold small.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from gitstore import Store
from gitstore.entities.api import fold_drafts
from gitstore.errors import Busy, StorageFull
from gitstore.upkeep.api import maintain

log = logging.getLogger("gitstore.housekeeping")  # the name operators filter logs by


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


async def keep_folding(store: Store, every_seconds: float) -> None:
    """Run until cancelled."""
    while True:
        await asyncio.sleep(every_seconds)
        await fold_all(store)


async def fold_all(store: Store) -> None:
    for repo in store.opened_repositories():
        if repo.index.unfolded_mark() is None:
            continue
        try:
            await run_in_threadpool(fold_drafts, repo)
        except StorageFull:
            log.warning("no room to fold draft changes in %s; they wait", repo.name)
        except Busy:
            log.info("the drafts lock of %s stayed held; its changes fold next time", repo.name)
        except Exception:  # the change is committed; the next fold or reader tries again
            log.exception("folding draft changes failed in %s", repo.name)

"""The public copy follows publishes (ADR 0013): the store calls back after every publish,
unpublish or republish made through gitstore.content, once its locks are let go, and the sync
runs on a thread of its own, so no response waits for it. A burst of publishes coalesces
(`sync_live_mirror_after_publish`), and a reader of the copy catches it up before it is
served, so a sync that falls behind is never seen.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gitstore import ContentRepository, Store
from gitstore.publishing.api import sync_live_mirror_after_publish

# Two threads: one repository's sync waiting for its publish lock never holds up another's.
_syncs = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gitstore-live-mirror")


def sync_public_copies_after_publishes(store: Store) -> None:
    """Have every publish in `store` bring its repository's public copy up to date."""
    store.call_after_publish(_sync_in_background)


def _sync_in_background(repo: ContentRepository) -> None:
    _syncs.submit(sync_live_mirror_after_publish, repo)

"""Publishing's public surface: what the layers above, the service and the benches use of it.

publish.py       one publish: the commit on `main`, then the published refs and the index
unpublishing.py  taking live content down and putting it back up, and serving what is down
parts.py         what layers above add to every publish (containers' members, dependents)
slots.py         seed 002's draft slots: one base_path, one translation per document
public.py        the public projection of a live entity
mirror.py        the public copy readers without the draft right may clone
landing.py       publishes landing on `main`: the fold, a commit each, one durable move
rounds.py        publishes queued for the publish lock, planned and landed together
"""

from __future__ import annotations

from gitstore.publishing.mirror import (
    ensure_live_mirror,
    live_mirror_path,
    rebuild_live_mirror,
    sync_live_mirror,
    sync_live_mirror_after_publish,
)
from gitstore.publishing.parts import PublishPart, PublishParts
from gitstore.publishing.public import LiveKeys, hidden_keys, public_files
from gitstore.publishing.publish import (
    UPDATE_TYPES,
    Describe,
    PublishedItem,
    PublishNote,
    PublishRecord,
    PublishTarget,
    check_note,
    publish_row,
    publish_targets,
    published_row,
    roll_forward,
)
from gitstore.publishing.rounds import PublishRequest, publish_queued
from gitstore.publishing.slots import DraftSlots
from gitstore.publishing.unpublishing import put_back_up, serve, serve_at_path, take_down

__all__ = [
    "UPDATE_TYPES",
    "Describe",
    "DraftSlots",
    "LiveKeys",
    "PublishNote",
    "PublishPart",
    "PublishParts",
    "PublishRecord",
    "PublishRequest",
    "PublishTarget",
    "PublishedItem",
    "check_note",
    "ensure_live_mirror",
    "hidden_keys",
    "live_mirror_path",
    "public_files",
    "publish_queued",
    "publish_row",
    "publish_targets",
    "published_row",
    "put_back_up",
    "rebuild_live_mirror",
    "roll_forward",
    "serve",
    "serve_at_path",
    "sync_live_mirror",
    "sync_live_mirror_after_publish",
    "take_down",
]

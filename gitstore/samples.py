"""Load the sample repositories: each `sample_repos/*.json` file is a script of steps (who did
what, in order), so the demo content has real history: several authors, versions, publishes,
a restore and a discard. The scripts are reviewable text rather than opaque git packs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gitstore.entities import api as entities
from gitstore.entities.model import Author
from gitstore.publishing import api as publishing
from gitstore.store import Store

__all__ = ["load_samples"]


def load_samples(store: Store, directory: Path) -> list[str]:
    """Build every sample repository under `directory` that the store does not have yet."""
    loaded = []
    for script in sorted(directory.glob("*.json")):
        spec = orjson.loads(script.read_bytes())
        if any(r.name == spec["name"] for r in store.repositories()):
            continue
        run_script(store, spec)
        loaded.append(spec["name"])
    return loaded


def run_script(store: Store, spec: dict[str, Any]) -> None:
    repo = store.create_repository(spec["name"], spec.get("description", ""))
    authors = {handle: Author(name, email) for handle, (name, email) in spec["authors"].items()}
    for step in spec["steps"]:
        who = authors[step["as"]]
        if "put" in step:
            entities.put_draft(repo, step["put"], step["doc"], author=who)
        elif "patch" in step:
            entities.patch_draft(repo, step["patch"], step["doc"], author=who)
        elif "delete" in step:
            entities.delete_entity(repo, step["delete"], author=who)
        elif "discard" in step:
            entities.discard_draft(repo, step["discard"], author=who)
        elif "restore" in step:
            entities.restore_version(repo, step["restore"], step["version"], author=who)
        elif "publish" in step:
            publishing.publish(repo, [publishing.PublishTarget(k) for k in step["publish"]], author=who)
        elif "publish_all" in step:
            publishing.publish_all_drafts(repo, author=who)
        else:
            raise ValueError(f"unknown sample step: {step}")

"""Load the sample repositories: each `sample_repos/*.json` file is a script of steps (who did
what, in order), so the demo content has real history: several authors, versions, publishes,
a restore and a discard. The scripts are reviewable text rather than opaque git packs.

Steps go through the links layer, as the API's writes do. A script cannot know commit
ids in advance, so a member written `{"key": k, "version": n}` is pinned to version n of k.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gitstore.entities import api as entities
from gitstore.entities.model import Author
from gitstore.links import api as links
from gitstore.publishing.api import PublishTarget
from gitstore.repository import ContentRepository
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
            links.put_draft(repo, step["put"], _pinned(repo, step["doc"]), author=who)
        elif "patch" in step:
            links.patch_draft(repo, step["patch"], _pinned(repo, step["doc"]), author=who)
        elif "delete" in step:
            links.delete_entity(repo, step["delete"], author=who)
        elif "discard" in step:
            links.discard_draft(repo, step["discard"], author=who)
        elif "restore" in step:
            links.restore_version(repo, step["restore"], step["version"], author=who)
        elif "publish" in step:
            links.publish(repo, [PublishTarget(k) for k in step["publish"]], author=who)
        elif "publish_all" in step:
            links.publish_all_drafts(repo, author=who)
        elif "unpublish" in step:
            notice = step["unpublish"]
            links.unpublish(
                repo,
                step["key"],
                notice["type"],
                author=who,
                explanation=notice.get("explanation"),
                alternative_path=notice.get("alternative_path"),
            )
        elif "link_type" in step:
            rule = step["link_type"]
            links.set_link_type(
                repo, rule["name"], reverse=rule.get("reverse"), breadcrumbs=rule.get("breadcrumbs", False), author=who
            )
        else:
            raise ValueError(f"unknown sample step: {step}")


def _pinned(repo: ContentRepository, doc: dict[str, Any]) -> dict[str, Any]:
    if "members" not in doc:
        return doc
    members = []
    for member in doc["members"]:
        if "version" in member:
            commit = entities.get_entity(repo, member["key"], version=member["version"]).commit
            member = {"key": member["key"], "pin": commit}
        members.append(member)
    return {**doc, "members": members}

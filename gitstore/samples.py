"""The sample repositories: load them from reviewable text, and write their content back.

Each sample is a folder `sample_repos/<name>/` (the repository's name) holding:

    bundle/        the repository's drafts as they end up: an import bundle kept unpacked, file for
                   file what `gitstore export --state draft` writes (<shard>/<key>/entity.json,
                   fields/<name>.txt, members.json, unpublishing.json; pins/ for pinned old versions)
    history.json   its authors, and the steps, in order, by which they got there

The bundle is where the history ends. The history holds what came before: earlier versions,
publishes, a restore, a discard, a delete. An `import` step brings the entities it names to
their content in the bundle, as the author who made that change, at that point of the story, in
one batch through the bundle importer. So every entity's final content is written in one place,
the bundle, and loading a sample then exporting its drafts gives the bundle back byte for byte
(tests/test_samples.py holds it): the kept bundle and the importer cannot drift apart. Changing
content is editing the bundle, or editing in the service and `gitstore save-sample`. The other
way round, the bundle as the starting point with history after it, would leave the content that
is current in the history script, and the bundle would show a state that no longer is.

Unpublishing comes from the bundle too. A notice records when it happened (`at`), and one made
while loading would say the moment of loading, which no kept file can match. So a page is
withdrawn or redirected by importing its bundle version, which carries the notice, and
publishing it at once (`"publish": true`): the commit an unpublish makes, published as it does.

Each step says when it happened (`"at"`, RFC 3339, no earlier than the step before), and its
commits carry that time, as author and committer: as-of reads, blame, the activity log and the
event feed show the history's own course, and loading a sample twice makes the same commits.

Steps, each `{"as": <author>, "at": <time>, ...}`:

    {"put": key, "doc": {...}}                 an earlier version, whole
    {"patch": key, "doc": {...}}               an earlier version, as a merge patch
    {"import": [keys], "publish": true}        the bundle content of these entities ("publish" optional)
    {"publish": [keys]}  {"publish_all": true}
    {"restore": key, "version": n}  {"discard": key}  {"delete": key}
    {"link_type": {"name": ..., "reverse": ..., "breadcrumbs": ...}}

A script cannot know commit ids, so in a doc a member `{"key": k, "version": n}` is pinned to
version n of k; in the bundle a pin names the pinned version's fingerprint (ADR 0004). Every
write goes through the same code as the API's.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from gitstore import content
from gitstore.bundles.api import (
    DEFAULT_LIMITS,
    NDJSON,
    TAR_GZ,
    Version,
    export_bundle,
    import_bundle,
    read_directory,
    read_entries,
    version_line,
    versions_from_entries,
)
from gitstore.entities import api as entities
from gitstore.entities.api import Author
from gitstore.errors import InvalidDocument
from gitstore.publishing.api import PublishTarget
from gitstore.repository import ContentRepository
from gitstore.store import Store

__all__ = ["BUNDLE", "HISTORY", "load_sample", "load_samples", "save_bundle"]

BUNDLE = "bundle"
HISTORY = "history.json"


def load_samples(store: Store, directory: Path) -> list[str]:
    """Build every sample under `directory` that the store does not have yet; their names."""
    have = {r.name for r in store.repositories()}
    loaded = []
    for history in sorted(directory.glob(f"*/{HISTORY}")):
        if history.parent.name not in have:
            loaded.append(load_sample(store, history.parent).name)
    return loaded


def load_sample(store: Store, folder: Path) -> ContentRepository:
    """Create the repository `folder` holds (named after it) and run its history.

    Raises InvalidDocument if the bundle breaks a rule, ValueError if the history does not
    import every entity of the bundle or its times do not run forward, before anything is created."""
    history = folder / HISTORY
    spec = orjson.loads(history.read_bytes())
    times = _times(history, spec["steps"])
    bundle = _Bundle(folder / BUNDLE)
    imported = {key for step in spec["steps"] for key in step.get("import", ())}
    missing, unknown = sorted(bundle.current.keys() - imported), sorted(imported - bundle.current.keys())
    if missing or unknown:
        raise ValueError(
            f"{history}: every entity of the bundle is imported by a step, and only those: "
            f"never imported {missing}, not in the bundle {unknown}"
        )
    repo = store.create_repository(folder.name, spec.get("description", ""))
    authors = {handle: Author(name, email) for handle, (name, email) in spec["authors"].items()}
    for number, (step, at) in enumerate(zip(spec["steps"], times, strict=True), 1):
        try:
            _run(repo, bundle, step, dataclasses.replace(authors[step["as"]], at=at))
        except Exception as exc:
            exc.add_note(f"{history}, step {number}: {orjson.dumps(step).decode()}")
            raise
    return repo


def _times(history: Path, steps: list[dict[str, Any]]) -> list[datetime]:
    """Each step's time; an as-of read finds a moment by commit time, so they may not go back."""
    times: list[datetime] = []
    for number, step in enumerate(steps, 1):
        try:
            at = datetime.fromisoformat(step["at"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f'{history}, step {number}: "at" is the step\'s time, RFC 3339') from None
        if at.tzinfo is None:
            raise ValueError(f'{history}, step {number}: "at" needs its UTC offset ({step["at"]})')
        if times and at < times[-1]:
            raise ValueError(f"{history}, step {number}: {step['at']} is before the step before it")
        times.append(at)
    return times


def _run(repo: ContentRepository, bundle: _Bundle, step: dict[str, Any], who: Author) -> None:
    if "import" in step:
        bundle.import_into(repo, step["import"], who, publish=step.get("publish", False))
    elif "put" in step:
        content.put_draft(repo, step["put"], _pinned(repo, step["doc"]), author=who)
    elif "patch" in step:
        content.patch_draft(repo, step["patch"], _pinned(repo, step["doc"]), author=who)
    elif "delete" in step:
        content.delete_entity(repo, step["delete"], author=who)
    elif "discard" in step:
        content.discard_draft(repo, step["discard"], author=who)
    elif "restore" in step:
        content.restore_version(repo, step["restore"], step["version"], author=who)
    elif "publish" in step:
        content.publish(repo, [PublishTarget(k) for k in step["publish"]], author=who)
    elif "publish_all" in step:
        content.publish_all_drafts(repo, author=who)
    elif "link_type" in step:
        rule = step["link_type"]
        content.set_link_type(
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


class _Bundle:
    """A sample's bundle directory, read and checked once, then imported a few entities at a time."""

    def __init__(self, directory: Path) -> None:
        versions, problems = versions_from_entries(read_directory(directory, DEFAULT_LIMITS))
        if problems:
            raise InvalidDocument(
                f"{directory} has {len(problems)} problem(s); the first: {problems[0].entry}: {problems[0].msg}",
                errors=[p.as_error() for p in problems],
            )
        self.current = {v.key: v for v in versions if v.pin is None}
        self._carried = {(v.key, v.pin): v for v in versions if v.pin is not None}

    def import_into(self, repo: ContentRepository, keys: Iterable[str], who: Author, *, publish: bool) -> None:
        """Import the bundle's versions of `keys`, with the pinned versions they need, as `who`.

        They go to the importer as JSON lines, the bundle format whose unit is one version, so
        a problem names a line; the note added to the error names the file it came from."""
        chosen = self._with_pinned([self.current[key] for key in keys])
        lines = io.BytesIO(b"".join(version_line(version) for version in chosen))
        try:
            import_bundle(repo, lines, NDJSON, author=who, publish=publish)
        except InvalidDocument as exc:
            origins = {f"line {number}": version.origin for number, version in enumerate(chosen, 1)}
            for error in exc.extra["errors"]:
                where, *loc = error["loc"]
                exc.add_note(f"{origins.get(where, where)} {'.'.join(map(str, loc))}: {error['msg']}")
            raise

    def _with_pinned(self, versions: list[Version]) -> list[Version]:
        """`versions`, then every carried version (pins/) that their pins name, at any depth."""
        chosen = list(versions)
        taken: set[tuple[str, str]] = set()
        for version in chosen:  # grows as it goes: a pinned container pins versions too
            for member in version.content.members or ():
                if member.pin is None:
                    continue
                name = (member.key, member.pin)
                if name in self._carried and name not in taken:
                    taken.add(name)
                    chosen.append(self._carried[name])
        return chosen


def save_bundle(repo: ContentRepository, directory: Path) -> int:
    """Write `repo`'s drafts as the bundle directory `directory`: an export, unpacked (read back by
    the same safe reader as any archive). The directory is replaced whole, so files the export
    no longer holds go; it is built aside and renamed into place. Returns how many files it holds."""
    exported = io.BytesIO(b"".join(export_bundle(repo, state="draft", media_type=TAR_GZ)))
    staging = directory.with_name(f".{directory.name}.new")
    retired = directory.with_name(f".{directory.name}.old")
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    count = 0
    try:
        for entry in read_entries(exported, TAR_GZ, DEFAULT_LIMITS):
            path = staging / entry.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.data)
            count += 1
        if directory.exists():
            directory.rename(retired)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return count

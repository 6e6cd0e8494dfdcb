"""The event feed: ordered, resumable, read off git history, surviving restarts and crashes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from gitstore import ContentRepository, Store, content
from gitstore.entities.draft_branch import folded_draft_head
from gitstore.errors import InvalidInput
from gitstore.events import read_events
from gitstore.publishing.api import PublishTarget
from gitstore.upkeep.repair import reindex
from tests.conftest import ADA, GRACE
from tests.serving import start_server


def every_event(repo: ContentRepository, *, after: str | None = None, limit: int = 3) -> list[tuple[str, ...]]:
    """Page through the whole feed, `limit` at a time."""
    found = []
    while True:
        page = read_events(repo, after=after, limit=limit, with_dependents=False)
        if not page.items:
            return found
        found += [(e.id, e.kind, e.view, e.key, e.action) for e in page.items]
        after = page.cursor


def test_events_come_in_order_with_authors_and_dependents(repo: ContentRepository) -> None:
    content.put_draft(repo, "hub", {"type": "guide", "title": "Hub", "base_path": "/hub"}, author=ADA)
    content.put_draft(repo, "spoke", {"type": "guide", "title": "Spoke", "links": {"related": ["hub"]}}, author=ADA)
    content.publish(repo, [PublishTarget("hub"), PublishTarget("spoke")], author=GRACE)
    content.patch_draft(repo, "hub", {"title": "Hub 2"}, author=ADA)
    content.discard_draft(repo, "hub", author=ADA)
    content.unpublish(repo, "hub", "gone", author=GRACE)
    content.delete_entity(repo, "spoke", author=ADA)

    page = read_events(repo, limit=100)
    assert [(e.kind, e.view, e.key, e.action) for e in page.items] == [
        ("draft_changed", "draft", "hub", "create"),
        ("draft_changed", "draft", "spoke", "create"),
        ("published", "live", "hub", "create"),
        ("published", "live", "spoke", "create"),
        ("draft_changed", "draft", "hub", "update"),
        ("discarded", "draft", "hub", "discard"),
        ("draft_changed", "draft", "hub", "unpublish"),
        ("unpublished", "live", "hub", "unpublish"),
        ("deleted", "draft", "spoke", "delete"),
    ]
    first = page.items[0]
    assert (first.author_name, first.author_email) == ("Ada Lovelace", "ada@example.org")
    assert page.items[2].author_name == "Grace Hopper"
    assert page.items[2].dependents == ["spoke"]  # spoke's expanded links show hub
    assert page.items[-1].id == page.cursor


def test_a_publish_events_dependents_are_fixed_when_it_happens(repo: ContentRepository) -> None:
    """An event is a fact: the dependents a publish event names are those of that moment, the
    same on every read, after later changes, a restart and a reindex."""

    def live_events() -> list[tuple[str, str, list[str]]]:
        return [(e.key, e.kind, e.dependents) for e in read_events(repo, limit=100, drafts=False).items]

    content.put_draft(repo, "hub", {"type": "guide", "title": "Hub"}, author=ADA)
    content.publish(repo, [PublishTarget("hub")], author=GRACE)
    assert live_events() == [("hub", "published", [])]
    content.put_draft(repo, "spoke", {"type": "guide", "title": "Spoke", "links": {"related": ["hub"]}}, author=ADA)
    content.publish(repo, [PublishTarget("spoke")], author=GRACE)
    first = live_events()
    assert first == [("hub", "published", []), ("spoke", "published", ["hub"])]  # hub shows related_from
    content.delete_entity(repo, "spoke", author=ADA)
    content.publish(repo, [PublishTarget("spoke")], author=GRACE)
    assert live_events()[:2] == first
    reindex(repo)
    again = Store(repo.path.parent).repository(repo.name)
    assert [(e.key, e.kind, e.dependents) for e in read_events(again, limit=100, drafts=False).items][:2] == first


def test_a_draft_events_dependents_are_fixed_when_it_happens(repo: ContentRepository) -> None:
    """The same for changes to drafts, whether folded (single changes) or committed as a batch
    (a delete that leaves its containers): recorded on `draft`, read back unchanged."""

    def draft_events() -> list[tuple[str, str, list[str]]]:
        return [(e.key, e.kind, e.dependents) for e in read_events(repo, limit=100).items if e.view == "draft"]

    # Each change folded into `draft` at once, as the service does every second; its event
    # records the dependents as of the fold.
    content.put_draft(repo, "hub", {"type": "guide", "title": "Hub"}, author=ADA)
    folded_draft_head(repo)
    content.put_draft(repo, "spoke", {"type": "guide", "title": "Spoke", "links": {"related": ["hub"]}}, author=ADA)
    folded_draft_head(repo)
    content.patch_draft(repo, "hub", {"title": "Hub 2"}, author=ADA)
    folded_draft_head(repo)
    content.put_draft(
        repo, "box", {"type": "container", "title": "Box", "members": [{"key": "hub", "pin": None}]}, author=ADA
    )
    first = draft_events()
    assert first[:3] == [
        ("hub", "draft_changed", []),
        ("spoke", "draft_changed", ["hub"]),
        ("hub", "draft_changed", ["spoke"]),
    ]
    content.delete_entity(repo, "hub", author=ADA)  # a batch: hub's delete and box without it
    deleted = draft_events()[4:]
    assert ("hub", "deleted", ["spoke"]) in deleted  # as the batch left things: box holds it no more
    content.patch_draft(repo, "spoke", {"links": {}}, author=ADA)  # later changes rewrite nothing
    assert draft_events()[: len(first) + len(deleted)] == first + deleted
    reindex(repo)
    again = Store(repo.path.parent).repository(repo.name)
    assert [(e.key, e.kind, e.dependents) for e in read_events(again, limit=100).items if e.view == "draft"][
        : len(first) + len(deleted)
    ] == first + deleted


def test_resuming_from_any_event_neither_skips_nor_repeats(repo: ContentRepository) -> None:
    for i in range(7):
        content.put_draft(repo, f"p{i}", {"type": "page", "title": f"P{i}"}, author=ADA)
        if i % 3 == 0:
            content.publish(repo, [PublishTarget(f"p{i}")], author=GRACE)
    whole = every_event(repo, limit=1000)
    assert len(whole) == 10 and len({e[0] for e in whole}) == 10
    assert every_event(repo, limit=2) == whole  # any page size gives the same feed
    for i, event in enumerate(whole):
        assert every_event(repo, after=event[0]) == whole[i + 1 :]


def test_the_feed_survives_a_reindex_and_readers_see_only_the_live_site(repo: ContentRepository) -> None:
    content.put_draft(repo, "a", {"type": "page", "title": "A"}, author=ADA)
    content.publish(repo, [PublishTarget("a")], author=GRACE)
    content.patch_draft(repo, "a", {"title": "A2"}, author=ADA)
    before = every_event(repo)
    reindex(repo)  # the index, feed table included, is rebuilt from git
    assert every_event(repo) == before
    assert [e.kind for e in read_events(repo, drafts=False).items] == ["published"]
    assert read_events(repo, after="latest").items == []
    with pytest.raises(InvalidInput):
        read_events(repo, after="../../etc")


def test_a_change_whose_draft_commit_a_crash_lost_still_has_its_event(repo: ContentRepository) -> None:
    """A single write's commit point is its entity ref; if the process dies before `draft`
    moves, startup repair adds the change to `draft` and the feed announces it there."""
    from gitstore.entities.document import document_to_files, parse_document
    from gitstore.repository import draft_ref
    from gitstore.storage.api import set_ref, write_files
    from gitstore.upkeep.repair import repair

    content.put_draft(repo, "a", {"type": "page", "title": "A"}, author=ADA)
    every_event(repo)  # the feed has read `draft` up to here
    # Simulate the crash: a commit on the entity's branch that `draft` never heard of.
    git = repo.storage.git
    tip = git.references[draft_ref("a")].target
    lost = git.create_commit(
        None,
        git[tip].author,
        git[tip].author,
        "Update a: title\n\nGitstore-Key: a\nGitstore-Action: update\nGitstore-Version: 2\nGitstore-Edition: 1\n",
        write_files(git, document_to_files("a", parse_document({"type": "page", "title": "A2"}))),
        [tip],
    )
    set_ref(git, draft_ref("a"), expected=tip, new=lost)
    repair(repo)
    assert [(e[1], e[4]) for e in every_event(repo)] == [("draft_changed", "create"), ("draft_changed", "update")]
    assert read_events(repo, limit=100).items[-1].commit == str(lost)


def test_feed_resumes_across_a_server_kill_with_concurrent_writers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Store(data).create_repository("site")
    proc, url = start_server(data)
    where = {"url": url}
    acknowledged: list[tuple[str, str]] = []  # (key, commit) of every write that answered 2xx
    published: list[str] = []
    stop = threading.Event()

    def call(method: str, path: str, **kwargs: object) -> httpx.Response | None:
        """The request's answer, retrying while the server is down (an unanswered request was
        never acknowledged, so only answers count)."""
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            try:
                return httpx.request(method, where["url"] + path, timeout=10, **kwargs)  # type: ignore[arg-type]
            except httpx.HTTPError:
                time.sleep(0.05)
        return None

    def writer(n: int) -> None:
        for i in range(12):
            r = call("PUT", f"/repos/site/entities/w{n}", json={"type": "page", "title": f"w{n} #{i}"})
            if r is not None and r.status_code in (200, 201):
                acknowledged.append((f"w{n}", r.json()["commit"]))
            if i % 4 == 3:
                r = call("POST", f"/repos/site/entities/w{n}/publish")
                if r is not None and r.status_code == 200 and r.json()["commit"]:
                    published.append(r.json()["commit"])

    consumed: list[dict[str, object]] = []
    cursor: dict[str, str | None] = {"after": None}

    def consumer() -> None:
        # Bounded by pages, not by the clock: a loaded machine makes the run slow, not wrong.
        for _ in range(5000):
            # Only a page asked for after the last write was acknowledged may end the feed: one
            # asked for before can be read before that write and answered after it, empty, and
            # on a loaded machine that happened.
            writers_done = stop.is_set()
            params = {"wait": 0.5, "limit": 7} | ({"after": cursor["after"]} if cursor["after"] else {})
            r = call("GET", "/repos/site/events", params=params)
            if r is None or r.status_code != 200:
                continue
            page = r.json()
            consumed.extend(page["items"])
            cursor["after"] = page["cursor"]
            if writers_done and not page["items"]:
                return

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    reading = threading.Thread(target=consumer)
    for t in [*writers, reading]:
        t.start()
    try:
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)  # mid-write, mid-poll
        proc.wait()
        proc, where["url"] = start_server(data)
        for t in writers:
            t.join(timeout=120)
        stop.set()
        reading.join(timeout=120)
        assert not reading.is_alive(), "the consumer never read to the end of the feed"
        replay = httpx.get(where["url"] + "/repos/site/events", params={"limit": 1000}, timeout=30).json()["items"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    ids = [e["id"] for e in consumed]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert sorted(ids) == sorted(e["id"] for e in replay), "the resumed feed skipped or invented events"
    for stream in (0, 2):  # each history's own order is kept: draft positions, then main positions
        positions = [tuple(int(x) for x in i.split(".")[stream : stream + 2]) for i in ids]
        assert positions == sorted(positions)
    drafted = [e["commit"] for e in consumed if e["view"] == "draft"]
    for key, commit in acknowledged:
        assert drafted.count(commit) == 1, f"acknowledged write {key}@{commit} has no single event"
    seen_drafts: set[object] = set()
    for event in consumed:  # a publish never arrives before the change it publishes
        if event["view"] == "draft":
            seen_drafts.add(event["commit"])
        elif event["kind"] == "published":
            assert event["commit"] in seen_drafts
    assert published and acknowledged, (published, acknowledged)

"""The public copy is a projection of main: one commit per publish, every object part of a
published state, gone content out of the current tree, and the same commits however it is built."""

from __future__ import annotations

import subprocess
import time

import pygit2
import pytest
from fastapi.testclient import TestClient

from api.settings import Settings
from gitstore import ContentRepository, Store, content
from gitstore.publishing import api as publishing
from gitstore.publishing.mirror import ensure_live_mirror, live_mirror_path, rebuild_live_mirror, sync_live_mirror
from gitstore.storage.api import entity_path
from tests.conftest import ADA, GRACE, fsck_strict, git, object_bytes, object_ids


def publish(repo: ContentRepository, *keys: str) -> None:
    """Exactly `keys`, nothing they would bring along: what the copy may name is the point."""
    publishing.publish_targets(repo, [publishing.PublishTarget(k) for k in keys], author=ADA)


def published_states(repo: ContentRepository) -> set[str]:
    """Every tree and blob of every entity version main ever published."""
    found: set[str] = set()
    for line in git(repo.path, "log", "--format=%B", "main").splitlines():
        if line.startswith("Gitstore-Published: "):
            sha = line.split()[2]
            found.add(git(repo.path, "rev-parse", f"{sha}^{{tree}}").strip())
            found.update(row.split()[2] for row in git(repo.path, "ls-tree", "-r", "-t", sha).splitlines())
    return found


def test_the_copy_has_one_commit_per_publish_and_only_published_objects(repo: ContentRepository) -> None:
    content.put_draft(repo, "page", {"type": "page", "title": "INTERMEDIATE-1"}, author=ADA)
    content.patch_draft(repo, "page", {"title": "Live one"}, author=GRACE)
    publish(repo, "page")
    content.patch_draft(repo, "page", {"title": "INTERMEDIATE-2"}, author=ADA)
    content.patch_draft(repo, "page", {"title": "Live two"}, author=ADA)
    publish(repo, "page")
    content.put_draft(repo, "never", {"type": "page", "title": "NEVER-LIVE"}, author=ADA)
    path = ensure_live_mirror(repo)

    assert git(path, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    assert git(path, "log", "--format=%an <%ae>|%s", "main").splitlines() == [
        "Ada Lovelace <>|Publish page version 4",
        "Ada Lovelace <>|Publish page version 2",
    ]
    assert git(path, "log", "--format=%at", "main") == git(repo.path, "log", "--format=%at", "main")
    # no draft commit at all, and no tree or blob that was never live
    aggregate = {line.split()[0] for line in git(path, "rev-list", "--objects", "main").splitlines()}
    commits = set(git(path, "rev-list", "main").split())
    trees_of_main = {git(path, "rev-parse", f"{c}^{{tree}}").strip() for c in commits}
    shards = {row.split()[2] for c in commits for row in git(path, "ls-tree", c).splitlines()}
    entity_objects = object_ids(path) - commits - trees_of_main - shards
    readme = {git(path, "rev-parse", "main:README").strip()}
    assert entity_objects - readme <= published_states(repo)
    assert object_ids(path) == aggregate
    for marker in (b"INTERMEDIATE-1", b"INTERMEDIATE-2", b"NEVER-LIVE", b"ada@example.org"):
        assert marker not in object_bytes(path)
    fsck_strict(path)


def test_gone_and_redirected_content_leaves_the_current_tree_and_vanished_leaves_no_trace(
    repo: ContentRepository,
) -> None:
    for key in ("gone", "moved", "vanished", "withdrawn"):
        content.put_draft(repo, key, {"type": "page", "title": f"{key} title", "base_path": f"/{key}"}, author=ADA)
    publish(repo, "gone", "moved", "vanished", "withdrawn")
    content.unpublish(repo, "gone", "gone", author=ADA, explanation="Replaced by a service")
    content.unpublish(repo, "moved", "redirect", author=ADA, alternative_path="/withdrawn")
    content.unpublish(repo, "vanished", "vanish", author=ADA)
    content.unpublish(repo, "withdrawn", "withdrawn", author=ADA, explanation="Out of date")
    path = ensure_live_mirror(repo)

    files = git(path, "ls-tree", "-r", "--name-only", "main").split()
    assert [f for f in files if f.startswith(entity_path("gone"))] == [f"{entity_path('gone')}/unpublishing.json"]
    assert [f for f in files if f.startswith(entity_path("moved"))] == [f"{entity_path('moved')}/unpublishing.json"]
    assert not any(f.startswith(entity_path("vanished")) for f in files)
    assert f"{entity_path('withdrawn')}/entity.json" in files  # withdrawn stays readable, as over REST
    assert "Replaced by a service" in git(path, "show", f"main:{entity_path('gone')}/unpublishing.json")
    # the full repository keeps every byte
    assert "gone title" in git(repo.path, "show", f"main:{entity_path('gone')}/entity.json")
    fsck_strict(path)


def test_a_sync_projects_only_what_a_publish_moved(repo: ContentRepository) -> None:
    for n in range(40):
        content.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    assert sync_live_mirror(repo) == 40 * 2  # each entity's tree and its entity.json
    content.patch_draft(repo, "page-7", {"title": "changed"}, author=ADA)
    publish(repo, "page-7")
    assert sync_live_mirror(repo) == 2
    assert sync_live_mirror(repo) == 0
    # nothing hidden: the projection's trees are main's own
    assert git(live_mirror_path(repo), "rev-parse", "main^{tree}") == git(repo.path, "rev-parse", "main^{tree}")


def test_small_syncs_add_loose_objects_so_the_copy_does_not_gather_packs(repo: ContentRepository) -> None:
    """Every lookup searches each pack: a pack per publish made each later sync dearer."""
    for n in range(80):
        content.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    content.publish_all_drafts(repo, author=ADA)
    path = ensure_live_mirror(repo)  # a big first copy: one pack
    packs = sorted((path / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 1
    for n in range(5):
        content.patch_draft(repo, f"page-{n}", {"title": f"changed {n}"}, author=ADA)
        publish(repo, f"page-{n}")
        assert sync_live_mirror(repo) == 2
    assert sorted((path / "objects" / "pack").glob("*.pack")) == packs
    fsck_strict(path)


def test_however_it_is_built_the_copy_has_the_same_commits(repo: ContentRepository) -> None:
    """A sync several publishes behind, one after each, and a rebuild from scratch agree."""
    for key in ("a", "b", "c"):
        content.put_draft(repo, key, {"type": "page", "title": key}, author=ADA)
    publish(repo, "a")
    path = ensure_live_mirror(repo)
    for key, title in [("b", "b1"), ("c", "c1"), ("b", "b2")]:
        content.patch_draft(repo, key, {"title": title}, author=ADA)
        publish(repo, key)
    content.unpublish(repo, "a", "gone", author=ADA)
    sync_live_mirror(repo)
    behind = git(path, "rev-parse", "main")
    rebuild_live_mirror(repo)
    assert git(path, "rev-parse", "main") == behind
    assert git(path, "log", "--format=%B", "-1", "main").strip().splitlines()[-1] == (
        "Gitstore-Source: " + git(repo.path, "rev-parse", "main").strip()
    )
    fsck_strict(path)


def test_a_copy_in_the_old_layout_is_replaced_with_nothing_of_it_left(repo: ContentRepository) -> None:
    """Before the projection the copy held main itself and refs/published/*, whose ancestry is
    every draft: its objects must not survive the upgrade."""
    content.put_draft(repo, "page", {"type": "page", "title": "DRAFT-BEFORE-LIVE"}, author=ADA)
    content.patch_draft(repo, "page", {"title": "Live"}, author=ADA)
    publish(repo, "page")
    old = live_mirror_path(repo)
    pygit2.init_repository(str(old), bare=True, initial_head="main")
    subprocess.run(["git", "--git-dir", str(repo.path), "push", "-q", str(old), "main", "refs/published/*"], check=True)
    assert b"DRAFT-BEFORE-LIVE" in object_bytes(old)
    path = ensure_live_mirror(repo)
    assert git(path, "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
    assert b"DRAFT-BEFORE-LIVE" not in object_bytes(path)
    assert not list(path.parent.glob("live.git.*"))


@pytest.mark.parametrize("policy, author", [("name", "Grace Hopper <>"), ("none", "gitstore <>")])
def test_the_copy_names_who_published_as_configured_and_never_their_email(
    repo: ContentRepository, monkeypatch: pytest.MonkeyPatch, policy: str, author: str
) -> None:
    monkeypatch.setenv("GITSTORE_PUBLIC_AUTHORS", policy)
    content.put_draft(repo, "page", {"type": "page", "title": "P"}, author=ADA)
    content.publish(repo, [publishing.PublishTarget("page")], author=GRACE)
    path = ensure_live_mirror(repo)
    assert git(path, "log", "--format=%an <%ae>|%cn <%ce>", "main").strip() == f"{author}|{author}"
    fsck_strict(path)


def test_links_and_members_naming_a_key_never_live_are_left_out_of_the_copy(repo: ContentRepository) -> None:
    """A key that was never live is news of a draft: the copy names only keys live by then."""
    content.put_draft(repo, "secret-merger", {"type": "page", "title": "Not yet"}, author=ADA)
    content.put_draft(repo, "about", {"type": "page", "title": "About"}, author=ADA)
    links = {"related": ["secret-merger", "about"], "mentions": ["secret-merger"]}
    content.put_draft(repo, "home", {"type": "page", "title": "Home", "links": links}, author=ADA)
    members = [{"key": "about", "pin": None}, {"key": "secret-merger", "pin": None}]
    content.put_draft(repo, "box", {"type": "container", "title": "Box", "members": members}, author=ADA)
    publish(repo, "home", "about", "box")  # about goes live with home: it may be named
    path = ensure_live_mirror(repo)
    assert b"secret-merger" not in object_bytes(path)
    home = git(path, "show", f"main:{entity_path('home')}/entity.json")
    assert '"related": [\n      "about"\n    ]' in home and "mentions" not in home
    assert git(path, "show", f"main:{entity_path('box')}/members.json") == '[\n  {"key":"about","pin":null}\n]\n'
    # the full repository keeps the page as written
    assert "secret-merger" in git(repo.path, "show", f"main:{entity_path('home')}/entity.json")
    fsck_strict(path)


def test_syncs_after_publishes_in_a_burst_wait_for_the_lock_one_at_a_time(repo: ContentRepository) -> None:
    """Each publish's response schedules a sync; queued behind the publish lock, each would be a
    waiter the lock budget counts, and a burst of them made other writers' requests Busy."""
    import threading
    import time

    from gitstore.publishing.mirror import sync_live_mirror_after_publish

    content.put_draft(repo, "page", {"type": "page", "title": "P"}, author=ADA)
    publish(repo, "page")
    results: list[int] = []
    with repo.storage.publish_lock.held():
        threads = [
            threading.Thread(target=lambda: results.append(sync_live_mirror_after_publish(repo))) for _ in range(8)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(results) < 7 and time.monotonic() < deadline:  # all but one return at once
            time.sleep(0.01)
        finished_while_held = len(results)
    for t in threads:
        t.join(timeout=30)
    assert finished_while_held == 7
    assert sorted(results)[-1] > 0 and results.count(0) == 7
    assert (
        git(live_mirror_path(repo), "log", "-1", "--format=%B", "main")
        .strip()
        .endswith(git(repo.path, "rev-parse", "main").strip())
    )


def test_the_service_brings_the_copy_up_to_date_after_each_publish_with_no_reader_asking(
    client: TestClient, settings: Settings
) -> None:
    """api.mirroring: the app registers the sync once, and every publish through the door runs
    it, off the response, whether it came over REST, the web app or an import."""
    repo = Store(settings.data_dir).repository("demo")
    copy = live_mirror_path(repo)

    def projected() -> str:
        """The commit of `main` the copy shows, read without syncing it (as a clone would)."""
        deadline = time.monotonic() + 30
        while not (copy / "HEAD").is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        return git(copy, "log", "-1", "--format=%B", "main")

    client.put("/repos/demo/entities/page", json={"type": "page", "title": "One"}).raise_for_status()
    for step in range(3):
        client.patch(
            "/repos/demo/entities/page",
            json={"title": f"Live {step}"},
            headers={"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()
        client.post("/repos/demo/entities/page/publish").raise_for_status()
        main = git(repo.path, "rev-parse", "main").strip()
        deadline = time.monotonic() + 30
        while main not in projected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert main in projected()

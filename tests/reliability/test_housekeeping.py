"""gitstore gc packs everything while writers keep writing, and loses nothing."""

from __future__ import annotations

import threading

from gitstore import ContentRepository
from gitstore.entities import api as entities
from gitstore.housekeeping import gc
from gitstore.publishing import api as publishing
from gitstore.publishing.mirror import sync_live_mirror
from tests.conftest import ADA, fsck_strict, git


def test_gc_packs_objects_and_refs_while_writers_write(repo: ContentRepository) -> None:
    for n in range(50):
        entities.put_draft(repo, f"page-{n}", {"type": "page", "title": f"P{n}"}, author=ADA)
    publishing.publish_all_drafts(repo, author=ADA)
    for n in range(5):
        entities.patch_draft(repo, f"page-{n}", {"title": "again"}, author=ADA)
        publishing.publish(repo, [publishing.PublishTarget(f"page-{n}")], author=ADA)
        sync_live_mirror(repo)
    acked: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        try:
            while not stop.is_set():
                result = entities.patch_draft(repo, "page-9", {"fields": {"n": n}}, author=ADA)
                acked.append(result.entity.commit)
                n += 1
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    report = gc(repo)
    stop.set()
    thread.join()
    assert errors == [] and acked
    assert report.loose_objects_before > 0 and report.packs_after >= 1 and report.live_packs_after == 1
    chain = git(repo.path, "rev-list", "--first-parent", "refs/drafts/page-9").split()
    assert set(acked) <= set(chain)  # every write made during gc is on its branch
    assert entities.get_entity(repo, "page-3").title == "again"
    assert len(git(repo.path, "for-each-ref", "refs/drafts").splitlines()) == 50
    # all packed (no 4 KiB loose ref files left) but the one the writer moved again after gc
    assert [p.name for p in repo.path.glob("refs/drafts/*")] in ([], ["page-9"])
    entities.patch_draft(repo, "page-1", {"title": "after gc"}, author=ADA)  # a loose ref over a packed one
    publishing.publish(repo, [publishing.PublishTarget("page-1")], author=ADA)
    assert entities.get_entity(repo, "page-1").title == "after gc"
    fsck_strict(repo.path)

"""A full disk, for real: a small tmpfs that the writes themselves fill.

Every refused write is a 507 problem with nothing half-written (refs as they were, no lock
left, `git fsck --strict` clean); reads keep working; once space is freed, writes succeed and
every acknowledged one is there. Mounting needs root (CAP_SYS_ADMIN), as on CI: without it the
test fails and says so, rather than skipping.
"""

from __future__ import annotations

import os
import random
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import Store
from gitstore.errors import StorageFull
from gitstore.storage import space
from gitstore.storage.api import disk_errors
from gitstore.upkeep.repair import repair
from tests.conftest import disk_state, fsck_strict, git

pytestmark = pytest.mark.timeout(120)

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
FULL = "urn:gitstore:problem:storage-full"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"the disk-full tests mount a 4 MiB tmpfs, which needs root (CAP_SYS_ADMIN): {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Take every free byte of `disk` but `leave` (to the page)."""
    filler = disk / f"filler-{len(list(disk.glob('filler-*')))}"
    stats = os.statvfs(disk)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
        while leave == 0:
            os.write(fd, b"\0" * 4096)  # until ENOSPC: statvfs rounds
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def page(rng: random.Random, title: str) -> dict[str, object]:
    """A page whose html does not compress: each write takes its size on disk."""
    return {"type": "page", "title": title, "fields": {"html": "".join(rng.choices(string.ascii_letters, k=6000))}}


def test_a_full_disk_refuses_writes_cleanly_keeps_reads_and_recovers(small_disk: Path) -> None:
    rng = random.Random(7)
    data = small_disk / "data"
    other_files = small_disk / "other-files"  # what an operator deletes to make room
    other_files.write_bytes(b"\0" * 1024 * 1024)
    with TestClient(create_app(Settings(data_dir=data, load_samples=False))) as http:
        assert http.post("/repos", json={"name": "demo"}).status_code == 201
        repo = data / "demo.git"
        assert http.put("/repos/demo/entities/home", json=page(rng, "Home")).status_code == 201
        assert http.post("/repos/demo/entities/home/publish").status_code == 200
        acked: dict[str, str] = {}
        refused = 0
        for n in range(400):  # the writes fill the disk themselves
            before = disk_state(repo)
            answer = http.put(f"/repos/demo/entities/page-{n}", json=page(rng, f"Page {n}"))
            if answer.status_code == 201:
                acked[f"page-{n}"] = answer.json()["commit"]
                continue
            assert answer.status_code == 507, answer.text
            assert answer.headers["content-type"] == "application/problem+json" and answer.json()["type"] == FULL
            assert disk_state(repo) == before
            refused += 1
            if refused == 3:
                break
        assert refused == 3 and len(acked) > 10

        filler = fill(small_disk)  # now not a byte left, not even for an object
        before = disk_state(repo)
        etag = http.get("/repos/demo/entities/page-0?state=draft").headers["ETag"]
        refused_writes = {
            "create": lambda: http.put("/repos/demo/entities/late", json=page(rng, "Late")),
            "patch": lambda: http.patch("/repos/demo/entities/page-0", json={"title": "Edited"}, headers=MERGE_PATCH),
            "delete": lambda: http.delete("/repos/demo/entities/page-2"),
            "publish": lambda: http.post("/repos/demo/entities/page-3/publish"),
            "publish many": lambda: http.post("/repos/demo/publish", json={"keys": ["page-4", "page-5"]}),
            "container type": lambda: http.put("/repos/demo/types/unit", json={"allowed_member_types": ["page"]}),
            "repository": lambda: http.post("/repos", json={"name": "another"}),
        }
        for what, write in refused_writes.items():
            answer = write()
            assert answer.status_code == 507, f"{what}: {answer.text}"
            assert answer.headers["content-type"] == "application/problem+json" and answer.json()["type"] == FULL
            assert disk_state(repo) == before, what
        stale = {**MERGE_PATCH, "If-Match": etag}  # a failed precondition is still told as such
        assert http.patch("/repos/demo/entities/page-1", json={"title": "x"}, headers=stale).status_code == 412
        assert sorted(p.name for p in data.iterdir() if p.suffix == ".git" or p.name.startswith(".creating")) == [
            "demo.git"
        ]
        assert disk_state(repo)[1] == []  # no lock left to block a later write
        fsck_strict(repo)

        assert http.get("/health").status_code == 200
        assert http.get("/repos/demo/entities/home").json()["title"] == "Home"
        assert http.get("/repos/demo/entities/page-0?state=draft").json()["title"] == "Page 0"
        assert len(http.get("/repos/demo/entities?state=draft&limit=500").json()["items"]) == len(acked) + 1
        assert http.get("/repos/demo/entities/page-0/versions").status_code == 200

        filler.unlink()
        other_files.unlink()
        assert (
            http.patch("/repos/demo/entities/page-0", json={"title": "Edited"}, headers=MERGE_PATCH).status_code == 200
        )
        assert http.post("/repos/demo/publish", json={"keys": ["page-0", "page-1"]}).status_code == 200
        assert http.put("/repos/demo/entities/late", json=page(rng, "Late")).status_code == 201
        for key, commit in acked.items():  # every acknowledged write is on its branch
            chain = git(repo, "rev-list", "--first-parent", f"refs/drafts/{key}").split()
            assert commit in chain, key
    report = repair(Store(data).repository("demo"))
    assert report.reindexed_drafts == [] and report.removed_locks == []  # derived state kept in step
    fsck_strict(repo)


@pytest.mark.parametrize("leave_kib", range(0, 72, 8))
def test_at_any_fill_a_write_is_refused_untouched_or_applied_whole(
    small_disk: Path, leave_kib: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the room kept free before each commit point, the disk runs out at every step of a
    write in turn: objects, the commit, the entity's ref, `draft`, the index. Whatever the step,
    the answer is 507 with nothing moved, or success with the change readable."""
    monkeypatch.setattr(space, "ROOM_AFTER_COMMIT_POINT", 0)
    rng = random.Random(leave_kib)
    data = small_disk / "data"
    with TestClient(create_app(Settings(data_dir=data, load_samples=False))) as http:
        http.post("/repos", json={"name": "demo"}).raise_for_status()
        for key in ("one", "two"):
            http.put(f"/repos/demo/entities/{key}", json=page(rng, key)).raise_for_status()
        repo = data / "demo.git"
        filler = fill(small_disk, leave=leave_kib * 1024)
        before = disk_state(repo)
        answer = http.patch("/repos/demo/entities/one", json=page(rng, "changed"), headers=MERGE_PATCH)
        if answer.status_code == 507:
            assert disk_state(repo) == before
        else:
            assert answer.status_code == 200, answer.text
            assert git(repo, "rev-parse", "refs/drafts/one").strip() == answer.json()["commit"]
            assert http.get("/repos/demo/entities/one?state=draft").json()["title"] == "changed"
        assert disk_state(repo)[1] == []
        fsck_strict(repo)
        filler.unlink()
        assert http.patch("/repos/demo/entities/two", json={"title": "after"}, headers=MERGE_PATCH).status_code == 200
    repair(Store(data).repository("demo"))  # a restart catches up whatever the disk stopped
    with TestClient(create_app(Settings(data_dir=data, load_samples=False))) as http:
        listed = {e["key"]: e["title"] for e in http.get("/repos/demo/entities?state=draft").json()["items"]}
        assert listed == {"one": "changed" if answer.status_code == 200 else "one", "two": "after"}
    fsck_strict(repo)


def test_a_commit_that_could_not_be_written_is_an_error_not_an_id(small_disk: Path) -> None:
    """libgit2 1.9.7's git_commit_create ignores a failed object write and returns the id of
    the commit it never wrote (measured); gitstore's object backend makes it an error."""
    repo = Store(small_disk / "data").create_repository("demo")
    git_handle = repo.storage.git
    sig = pygit2.Signature("Ada", "ada@example.org")
    tree = git_handle.TreeBuilder().write()
    fill(small_disk)
    with pytest.raises(StorageFull), disk_errors():
        git_handle.create_commit(None, sig, sig, "never written " * 300, tree, [])
    assert git(repo.path, "count-objects").startswith("1 objects")  # the empty tree only

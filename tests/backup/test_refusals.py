"""What `gitstore restore` refuses: over what exists without --force, and any backup that is not
exactly what was written (a flipped byte, a missing file, a truncated manifest). Each refusal
names what it refused over, and leaves the data directory as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from gitstore import ContentRepository, content
from tests.backup.conftest import backed_up, refs_of
from tests.conftest import ADA, disk_state
from tests.test_cli import gitstore


def restore(source: Path, data: Path, *args: str) -> tuple[int, str]:
    done = gitstore("restore", str(source), "--data", str(data), *args)
    return done.returncode, done.stderr


def untouched(data: Path) -> bool:
    """Nothing restored and nothing left behind: no repository, no credentials, no staging."""
    return not data.exists() or not any(p for p in data.iterdir())


def test_restoring_over_an_existing_repository_needs_force(rich: ContentRepository, tmp_path: Path) -> None:
    data, backups = rich.path.parent, tmp_path / "backups"
    backed_up(str(backups), data)
    at_backup = refs_of(rich.path)
    content.put_draft(rich, "after", {"type": "page", "title": "Written after the backup"}, author=ADA)
    before = disk_state(rich.path)

    code, err = restore(backups, data, "source")
    assert code == 2 and "repository 'source' exists" in err and "--force" in err
    assert disk_state(rich.path) == before
    code, err = restore(backups, data)  # the whole node: the repository and the credentials file both exist
    assert code == 2 and "exists" in err
    assert disk_state(rich.path) == before

    code, err = restore(backups, data, "source", "--force")
    assert code == 0, err
    assert refs_of(rich.path) == at_backup
    assert not list(data.glob(".restoring-*")), "the replaced copy went with the staging folder"


def test_a_flipped_byte_in_a_bundle_is_refused_naming_it(rich: ContentRepository, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    report = backed_up(str(backups), rich.path.parent)
    bundle = backups / report["id"] / "repos" / "source" / "objects.bundle"
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bundle.write_bytes(bytes(raw))

    restored = tmp_path / "restored"
    code, err = restore(backups, restored)
    assert code == 2 and f"{report['id']}/repos/source/objects.bundle does not match the sha256" in err
    assert untouched(restored)


def test_a_missing_file_and_a_truncated_manifest_are_refused_naming_them(
    rich: ContentRepository, tmp_path: Path
) -> None:
    data, backups = rich.path.parent, tmp_path / "backups"
    first = backed_up(str(backups), data)
    content.put_draft(rich, "after", {"type": "page", "title": "After"}, author=ADA)
    second = backed_up(str(backups), data)
    restored = tmp_path / "restored"

    # the newest builds on the first: a file of the first missing is refused too
    shutil.copytree(backups, tmp_path / "kept")
    (backups / first["id"] / "repos" / "source" / "objects.bundle").unlink()
    code, err = restore(backups, restored)
    assert code == 2 and f"{first['id']}/repos/source/objects.bundle is missing" in err
    assert untouched(restored)

    shutil.rmtree(backups)
    shutil.copytree(tmp_path / "kept", backups)
    manifest = backups / second["id"] / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:-200])
    code, err = restore(backups, restored, "--json")
    assert code == 2 and f"{second['id']}/manifest.json is damaged or truncated" in err
    assert untouched(restored)

    # a parent manifest changed after its child was taken no longer matches what the child recorded
    shutil.rmtree(backups)
    shutil.copytree(tmp_path / "kept", backups)
    parent = backups / first["id"] / "manifest.json"
    parent.write_bytes(parent.read_bytes().replace(b'"full": true', b'"full":  true', 1))
    code, err = restore(backups, restored)
    assert code == 2 and f"{first['id']}/manifest.json is not the manifest {second['id']} was taken against" in err
    assert untouched(restored)

    # the intact chain restores; and the refusals above wrote nothing on the way
    shutil.rmtree(backups)
    shutil.copytree(tmp_path / "kept", backups)
    code, err = restore(backups, restored)
    assert code == 0, err


def test_a_manifest_cannot_send_a_restore_outside_its_folder(rich: ContentRepository, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    report = backed_up(str(backups), rich.path.parent)
    manifest = backups / report["id"] / "manifest.json"
    data = orjson.loads(manifest.read_bytes())
    data["repositories"]["../escaped"] = data["repositories"].pop("source")
    manifest.write_bytes(orjson.dumps(data))
    restored = tmp_path / "restored"
    code, err = restore(backups, restored)
    assert code == 2 and "manifest.json is damaged" in err and "invalid repository name" in err
    assert untouched(restored) and not (tmp_path / "escaped.git").exists()


def test_asking_for_what_is_not_there(rich: ContentRepository, tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    code, err = restore(tmp_path / "no-backups", restored)
    assert code == 2 and "holds no complete backup" in err
    backups = tmp_path / "backups"
    backed_up(str(backups), rich.path.parent)
    code, err = restore(backups, restored, "elsewhere")
    assert code == 2 and "holds no repository 'elsewhere'" in err
    code, err = restore(backups, restored, "--backup", "20200101T000000.000000Z")
    assert code == 2 and "no complete backup '20200101T000000.000000Z'" in err
    # a backup cut short (no manifest yet) is not a backup: never listed, never used
    (backups / "20990101T000000.000000Z" / "repos").mkdir(parents=True)
    listed = gitstore("restore", str(backups), "--list", "--json")
    assert [b["id"] for b in orjson.loads(listed.stdout)] != ["20990101T000000.000000Z"]
    assert len(orjson.loads(listed.stdout)) == 1
    assert untouched(restored)


def test_a_backup_does_not_build_on_a_damaged_one(rich: ContentRepository, tmp_path: Path) -> None:
    data, backups = rich.path.parent, tmp_path / "backups"
    first = backed_up(str(backups), data)
    manifest = backups / first["id"] / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:100])
    done = gitstore("backup", str(backups), "--data", str(data))
    assert done.returncode == 2 and f"{first['id']}/manifest.json is damaged" in done.stderr
    assert "--full" in done.stderr
    fresh = backed_up(str(backups), data, "--full")
    assert fresh["parent"] is None and fresh["repositories"]["source"]["kind"] == "full"
    code, err = restore(backups, tmp_path / "restored")
    assert code == 0, err

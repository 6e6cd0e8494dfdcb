"""A bundle kept unpacked, as a directory: read as its archive would be, and held to the same
rules (plain files only, nothing outside it, the same limits)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from gitstore import ContentRepository
from gitstore.bundles import reading
from gitstore.bundles.api import DEFAULT_LIMITS
from gitstore.bundles.format import TAR_GZ, versions_from_entries
from gitstore.bundles.reading import Limits, read_directory, read_entries
from gitstore.errors import InvalidBundle
from gitstore.storage.api import entity_path
from tests.bundles.conftest import export, read_tar

PAGE = f"{entity_path('page')}/entity.json"


def unpack(files: dict[str, bytes], root: Path) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read(root: Path, limits: Limits = DEFAULT_LIMITS) -> dict[str, bytes]:
    return {entry.name: entry.data for entry in read_directory(root, limits)}


def test_an_unpacked_export_reads_as_its_archive(source: ContentRepository, tmp_path: Path) -> None:
    bundle = export(source)
    root = unpack(read_tar(bundle), tmp_path / "bundle")
    entries = list(read_directory(root, Limits()))

    assert [e.name for e in entries] == sorted(e.name for e in entries)  # in name order, whatever the disk's
    assert {e.name: e.data for e in entries} == read_tar(bundle)
    assert any(e.name.startswith("pins/") for e in entries)
    from_directory, problems = versions_from_entries(entries)
    from_archive, _ = versions_from_entries(read_entries(io.BytesIO(bundle), TAR_GZ, Limits()))
    assert problems == [] and sorted(from_directory, key=str) == sorted(from_archive, key=str)


@pytest.mark.parametrize(
    "target",
    [PAGE, "/etc/passwd", ".."],
    ids=["to a file inside", "to a file outside", "to the parent directory"],
)
def test_a_symlink_refuses_the_bundle_wherever_it_points(tmp_path: Path, target: str) -> None:
    root = unpack({PAGE: b"{}"}, tmp_path / "bundle")
    (root / "zz-link").symlink_to(target if target.startswith("/") else root / target)
    with pytest.raises(InvalidBundle, match="zz-link is a link or device"):
        read(root)


def test_a_symlinked_directory_is_not_followed(tmp_path: Path) -> None:
    outside = unpack({PAGE: b"{}"}, tmp_path / "outside")
    root = unpack({PAGE: b"{}"}, tmp_path / "bundle")
    (root / "pins").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidBundle, match="pins is a link or device"):
        read(root)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    root = unpack({PAGE: b"{}"}, tmp_path / "bundle")
    os.mkfifo(root / "fifo")
    with pytest.raises(InvalidBundle, match="fifo is a link or device"):
        read(root)


def test_a_file_swapped_for_a_link_after_it_was_looked_at_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = unpack({PAGE: b"{}"}, tmp_path / "bundle")
    (root / "swapped").symlink_to("/etc/passwd")
    real_stat = os.stat

    def looked_at_before_the_swap(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real_stat(root / PAGE) if path == "swapped" else real_stat(path, *args, **kwargs)

    monkeypatch.setattr(reading.os, "stat", looked_at_before_the_swap)
    with pytest.raises(InvalidBundle, match="swapped cannot be read: Too many levels of symbolic links"):
        read(root)


@pytest.mark.parametrize(
    ("name", "why"),
    [("c:\\page.json", "absolute path"), (b"caf\xe9.json", "not a UTF-8 name")],
    ids=["backslash and drive", "not UTF-8"],
)
def test_a_name_no_archive_could_hold_is_refused(tmp_path: Path, name: str | bytes, why: str) -> None:
    root = unpack({PAGE: b"{}"}, tmp_path / "bundle")
    with open(os.path.join(os.fsencode(root), os.fsencode(name)), "wb"):
        pass
    with pytest.raises(InvalidBundle, match=why):
        read(root)


@pytest.mark.parametrize(
    ("limits", "why"),
    [
        (Limits(max_entries=4), "more than 4 entries"),  # three directories and two files
        (Limits(max_entry_bytes=10), "expands past 10 bytes"),
        (Limits(max_expanded_bytes=16), "holds more than 16 bytes"),
    ],
    ids=["entries", "one file", "everything"],
)
def test_limits_hold_as_for_an_archive(tmp_path: Path, limits: Limits, why: str) -> None:
    root = unpack({PAGE: b'{"type": "page"}', f"{entity_path('page')}/fields/body.txt": b"body\n"}, tmp_path / "b")
    assert len(read(root)) == 2
    with pytest.raises(InvalidBundle, match=why):
        read(root, limits)


def test_what_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bundle.tar.gz").write_bytes(b"")
    for path in (tmp_path / "bundle.tar.gz", tmp_path / "missing"):
        with pytest.raises(InvalidBundle, match="is not a readable directory"):
            read(path)


def test_an_empty_directory_is_an_empty_bundle(tmp_path: Path) -> None:
    (tmp_path / "bundle" / "ab").mkdir(parents=True)
    assert read(tmp_path / "bundle") == {}

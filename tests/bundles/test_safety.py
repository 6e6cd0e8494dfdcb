"""Hostile bundles are refused whole, before anything is written, with memory bounded."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile

import pytest

from gitstore import ContentRepository
from gitstore.bundles.format import NDJSON, TAR_GZ, ZIP
from gitstore.bundles.reading import Limits
from gitstore.errors import InvalidBundle
from gitstore.storage.api import entity_path
from tests.bundles.conftest import load, tar_gz, zip_of
from tests.conftest import disk_state

GOOD = {f"{entity_path('page')}/entity.json": b'{"type": "page", "title": "Page"}'}


def link(name: str, kind: bytes, target: str = "/etc/passwd") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def zip_symlink() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo(f"{entity_path('page')}/entity.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return out.getvalue()


def zip_bomb() -> bytes:
    """A 17 MiB member of zeros that deflates to a few KiB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(f"{entity_path('page')}/fields/body.txt", "w") as member:
            for _ in range(17):
                member.write(bytes(1024 * 1024))
    return out.getvalue()


def tar_bomb() -> bytes:
    """A tar.gz whose one entry declares (and holds) 17 MiB of zeros."""
    info = tarfile.TarInfo(f"{entity_path('page')}/fields/body.txt")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info.size = 17 * 1024 * 1024
        archive.addfile(info, io.BytesIO(bytes(info.size)))
    return gzip.compress(raw.getvalue(), 9)


HOSTILE = {
    "dot-dot in tar": (TAR_GZ, tar_gz({**GOOD, "../../outside.json": b"{}"}), "reaches outside"),
    "dot-dot inside a path": (TAR_GZ, tar_gz({"3c/../../x/entity.json": b"{}"}), "reaches outside"),
    "absolute path in tar": (TAR_GZ, tar_gz({"/etc/cron.d/evil": b"* * * * *"}), "absolute path"),
    "symlink in tar": (TAR_GZ, tar_gz(GOOD, then=link("ab/evil/entity.json", tarfile.SYMTYPE)), "link or device"),
    "hard link in tar": (TAR_GZ, tar_gz(GOOD, then=link("ab/evil/entity.json", tarfile.LNKTYPE)), "link or device"),
    "device in tar": (TAR_GZ, tar_gz(GOOD, then=link("ab/evil/entity.json", tarfile.CHRTYPE, "")), "link or device"),
    "dot-dot in zip": (ZIP, zip_of({**GOOD, "../outside.json": b"{}"}), "reaches outside"),
    "absolute path in zip": (ZIP, zip_of({"/tmp/x": b"{}"}), "absolute path"),
    "windows path in zip": (ZIP, zip_of({"C:/x/entity.json": b"{}"}), "absolute path"),
    "symlink in zip": (ZIP, zip_symlink(), "link or device"),
    "zip bomb": (ZIP, zip_bomb(), "expands past"),
    "tar.gz bomb": (TAR_GZ, tar_bomb(), "expands past"),
    "not gzip": (TAR_GZ, b"PK\x03\x04 certainly not a tarball", "not a readable tar.gz"),
    "not zip": (ZIP, gzip.compress(b"nope"), "not a readable zip"),
    "same path twice": (TAR_GZ, tar_gz(GOOD, then=tarfile.TarInfo(next(iter(GOOD))), data=b"{}"), "twice"),
    "endless line": (NDJSON, b'{"key": "' + b"a" * (17 * 1024 * 1024), "longer than"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_bundles_are_refused_and_nothing_is_written(repo: ContentRepository, case: str) -> None:
    media_type, data, why = HOSTILE[case]
    before = disk_state(repo.path)
    for dry_run in (True, False):
        with pytest.raises(InvalidBundle) as refused:
            load(repo, data, media_type, dry_run=dry_run)
        assert why in refused.value.detail
    assert disk_state(repo.path) == before


def test_limits_on_entries_and_expanded_size(repo: ContentRepository) -> None:
    many = tar_gz({f"{entity_path(f'p{i}')}/entity.json": b'{"type": "page", "title": "P"}' for i in range(11)})
    with pytest.raises(InvalidBundle, match="more than 10 entries"):
        load(repo, many, limits=Limits(max_entries=10))
    with pytest.raises(InvalidBundle, match="expands to more than 4096 bytes"):
        load(repo, many, limits=Limits(max_expanded_bytes=4096))
    lines = b"".join(b'{"key": "p%d", "document": {"type": "page", "title": "P"}}\n' % i for i in range(11))
    with pytest.raises(InvalidBundle, match="more than 10 entries"):
        load(repo, lines, NDJSON, limits=Limits(max_entries=10))
    assert load(repo, many).created == sorted(f"p{i}" for i in range(11))


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu"])
def test_long_paths_written_by_either_tar_dialect_are_read(repo: ContentRepository, tar_format: int) -> None:
    key = "k" * 64
    files = {
        f"{entity_path(key)}/entity.json": b'{"type": "page", "title": "Long"}',
        f"{entity_path(key)}/fields/{'f' * 64}.txt": b"a field with a long name\n",  # past ustar's 100
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tar_format) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    assert load(repo, out.getvalue()).created == [key]


def test_a_garbled_archive_is_refused(repo: ContentRepository) -> None:
    data = bytearray(tar_gz(GOOD))
    raw = bytearray(gzip.decompress(bytes(data)))
    raw[148:156] = b"0000000\0"  # the first header's checksum
    with pytest.raises(InvalidBundle, match="checksum"):
        load(repo, gzip.compress(bytes(raw)))

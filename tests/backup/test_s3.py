"""Backups in S3-compatible storage: a real S3 server (moto, its own process on loopback), the
endpoint and credentials from the environment as an operator would set them."""

from __future__ import annotations

from pathlib import Path

import boto3
import orjson

from gitstore import ContentRepository, content
from tests.backup.conftest import backed_up, refs_of
from tests.conftest import ADA, fsck_strict, settle
from tests.test_cli import gitstore


def test_backups_to_s3_restore_the_same_refs(rich: ContentRepository, tmp_path: Path, s3: dict[str, str]) -> None:
    data = rich.path.parent
    full = backed_up("s3://backups/nightly/node-1", data, env=s3)
    content.put_draft(rich, "after", {"type": "page", "title": "After"}, author=ADA)
    settle(rich.path)
    second = backed_up("s3://backups/nightly/node-1", data, env=s3)
    assert second["parent"] == full["id"] and second["repositories"]["source"]["kind"] == "incremental"

    bucket = boto3.client("s3", endpoint_url=s3["GITSTORE_S3_ENDPOINT"])
    keys = [o["Key"] for o in bucket.list_objects_v2(Bucket="backups", Prefix="nightly/node-1/")["Contents"]]
    assert f"nightly/node-1/{second['id']}/manifest.json" in keys
    assert f"nightly/node-1/{second['id']}/parts/credentials/credentials.json" not in keys  # unchanged: not again

    listed = gitstore("restore", "s3://backups/nightly/node-1", "--list", "--json", env=s3)
    assert [b["id"] for b in orjson.loads(listed.stdout)] == [full["id"], second["id"]]

    restored = tmp_path / "restored"
    done = gitstore("restore", "s3://backups/nightly/node-1", "--data", str(restored), env=s3)
    assert done.returncode == 0, done.stderr
    assert refs_of(restored / "source.git") == refs_of(rich.path)
    fsck_strict(restored / "source.git")
    assert (restored / "credentials.json").read_bytes() == (data / "credentials.json").read_bytes()


def test_a_damaged_object_in_s3_is_refused_naming_it(
    rich: ContentRepository, tmp_path: Path, s3: dict[str, str]
) -> None:
    report = backed_up("s3://backups/b", rich.path.parent, env=s3)
    bucket = boto3.client("s3", endpoint_url=s3["GITSTORE_S3_ENDPOINT"])
    key = f"b/{report['id']}/repos/source/objects.bundle"
    raw = bytearray(bucket.get_object(Bucket="backups", Key=key)["Body"].read())
    raw[-30] ^= 0x40
    bucket.put_object(Bucket="backups", Key=key, Body=bytes(raw))

    restored = tmp_path / "restored"
    done = gitstore("restore", "s3://backups/b", "--data", str(restored), env=s3)
    assert done.returncode == 2 and f"{report['id']}/repos/source/objects.bundle does not match" in done.stderr
    assert not restored.exists() or not any(restored.iterdir())


def test_an_unreachable_bucket_is_one_line(rich: ContentRepository, s3: dict[str, str]) -> None:
    done = gitstore("backup", "s3://no-such-bucket/x", "--data", str(rich.path.parent), env=s3)
    assert done.returncode == 2 and done.stderr.startswith("error: s3://no-such-bucket/x: NoSuchBucket")
    assert done.stderr.count("\n") == 1

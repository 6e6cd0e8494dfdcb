"""A repository with everything a backup must carry, and a real S3 server (moto, in its own
process on a loopback port)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitstore import ContentRepository, content
from gitstore.relay.api import Allowlist, subscriptions
from tests.bundles.conftest import source  # noqa: F401 (the fixture, by name)
from tests.conftest import ADA, GRACE, git, token_for
from tests.serving import free_port
from tests.test_cli import gitstore

__all__ = ["backed_up", "refs_of", "rich"]


@pytest.fixture
def rich(source: ContentRepository) -> ContentRepository:  # noqa: F811
    """`source` (drafts, pins inside pins, links, a translation, a withdrawn page, part of it
    published) plus history undone, a deletion, settings on refs/meta, a webhook subscription
    (relay state) and a token (the credentials file)."""
    content.restore_version(source, "intro", 1, author=GRACE)
    content.delete_entity(source, "video", author=ADA)
    content.set_link_type(source, "related", reverse="related_from", breadcrumbs=False, author=ADA)
    content.set_container_type(source, "playlist", ["component"], author=ADA)
    subscriptions.create(
        source,
        url="https://hooks.example.org/gitstore",
        secret="a-secret-of-sixteen-or-more",
        events=["published"],
        drafts=False,
        active=True,
        created_by="test",
        allow=Allowlist.parse(""),
    )
    token_for(source.path.parent, {"*": ["read", "preview"]})
    return source


def refs_of(path: Path) -> str:
    """Every ref and its object, as git lists them."""
    return git(path, "for-each-ref", "--format=%(objectname) %(refname)")


def backed_up(target: str, data: Path, *args: str, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    """`gitstore backup TARGET --data DATA --json`, its report."""
    import orjson

    done = gitstore("backup", target, "--data", str(data), "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """moto's S3 server on a loopback port, a bucket `backups` in it; yields the environment
    that points boto3 (in this process and in `gitstore` subprocesses) at it."""
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        "GITSTORE_S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "moto.log").read_text()
                time.sleep(0.1)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        import boto3

        boto3.client("s3", endpoint_url=env["GITSTORE_S3_ENDPOINT"]).create_bucket(Bucket="backups")
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()

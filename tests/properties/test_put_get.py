"""Through HTTP and git on disk: whatever valid document a client PUTs, a GET of the draft gives
back, and the repository stays one `git fsck --strict` accepts, with plain files only."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import hypothesis
import pygit2
from fastapi.testclient import TestClient
from hypothesis import given

from api.settings import Settings
from tests.conftest import fsck_strict
from tests.properties.strategies import documents

E = "/repos/demo/entities"


def test_a_put_document_reads_back_as_sent(client: TestClient, settings: Settings) -> None:
    client.put(f"{E}/target", json={"type": "page", "title": "Target"}).raise_for_status()
    keys = (f"e{n}" for n in itertools.count())

    # Each example writes a new entity; the client and its repository outlive the examples.
    @given(document=documents(link_targets=["target"]))
    @hypothesis.settings(max_examples=hypothesis.settings.default.max_examples // 5)
    def put_then_get(document: dict[str, Any]) -> None:
        key = next(keys)
        put = client.put(f"{E}/{key}", json=document)
        assert put.status_code == 201, put.text
        got = client.get(f"{E}/{key}", params={"state": "draft"}).json()
        sent = {"locale": "en", "fields": {}, "links": {}, **document}
        assert {name: got[name] for name in sent} == sent

    put_then_get()
    repo = settings.data_dir / "demo.git"
    fsck_strict(repo)
    assert_plain_files_only(repo)


def assert_plain_files_only(path: Path) -> None:
    """No symlink (120000) or submodule (160000) anywhere in any ref's tree."""
    repo = pygit2.Repository(str(path))
    for name in repo.references:
        stack = [repo.references[name].peel(pygit2.Tree)]
        while stack:
            for entry in stack.pop():
                assert entry.filemode in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.TREE), (name, entry.name)
                if entry.filemode == pygit2.enums.FileMode.TREE:
                    stack.append(repo[entry.id])

"""A source repository with everything a bundle must carry, and helpers to build bundles by hand."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Iterable

import orjson
import pytest

from gitstore import ContentRepository, Store, content
from gitstore.bundles.api import ImportReport, export_bundle, import_bundle
from gitstore.bundles.format import NDJSON, TAR_GZ, ZIP
from gitstore.containers.api import View, resolve_tree
from gitstore.containers.tree import TreeNode
from gitstore.publishing.api import PublishTarget
from tests.conftest import ADA, GRACE

FORMATS = (TAR_GZ, ZIP, NDJSON)
SOURCE_KEYS = sorted(
    ["intro", "quiz", "video", "cheatsheet", "unit-1", "unit-2", "ss-1", "s-1", "course"]
    + ["money", "tax", "tax-cy", "old-tax"]
)


def export(repo: ContentRepository, media_type: str = TAR_GZ, **kwargs: object) -> bytes:
    return b"".join(export_bundle(repo, media_type=media_type, **kwargs))  # type: ignore[arg-type]


def load(repo: ContentRepository, data: bytes, media_type: str = TAR_GZ, **kwargs: object) -> ImportReport:
    return import_bundle(repo, io.BytesIO(data), media_type, author=GRACE, **kwargs)  # type: ignore[arg-type]


def tar_gz(files: dict[str, bytes], *, then: tarfile.TarInfo | None = None, data: bytes = b"") -> bytes:
    """A tar.gz of `files`, and `then` (a link, a device...) holding `data` after them."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data_of in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data_of)
            archive.addfile(info, io.BytesIO(data_of))
        if then is not None:
            then.size = len(data)
            archive.addfile(then, io.BytesIO(data) if data else None)
    return out.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def ndjson(lines: Iterable[dict]) -> bytes:  # type: ignore[type-arg]
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def read_tar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]


def shape(node: TreeNode) -> tuple:  # type: ignore[type-arg]
    """A resolved tree as titles: what a reader sees, whatever the commit ids."""
    return (node.key, node.title, node.pinned, tuple(shape(m) for m in node.members or ()))


def tree_of(repo: ContentRepository, key: str, state: str = "draft") -> tuple:  # type: ignore[type-arg]
    return shape(resolve_tree(repo, key, View(state)))


@pytest.fixture
def source(store: Store) -> ContentRepository:
    """A course whose subsection pins an old unit version, which pins an old component version
    (pins inside a pinned version), a shared component, multi-line fields; and pages with a
    parent link, a Welsh translation and a withdrawn page, part of it published."""
    repo = store.create_repository("source")

    def put(key: str, doc: dict, who=ADA) -> str:  # type: ignore[no-untyped-def, type-arg]
        return content.put_draft(repo, key, doc, author=who).entity.commit

    intro_v1 = put("intro", {"type": "component.html", "title": "Intro v1", "fields": {"html": "<p>one</p>\n"}})
    put("intro", {"type": "component.html", "title": "Intro v2", "fields": {"html": "<p>two</p>\n<p>2</p>\n"}})
    put("quiz", {"type": "component.problem", "title": "Quiz", "fields": {"answers": [1, 2], "weight": 0.5}})
    put("video", {"type": "component.video", "title": "Video", "fields": {"url": "https://v.example/1"}})
    put("cheatsheet", {"type": "component.html", "title": "Cheatsheet", "fields": {"html": "a\nb\n"}}, GRACE)
    unit_v1 = put(
        "unit-1", {"type": "unit", "title": "Unit 1", "members": [{"key": "intro", "pin": intro_v1}, {"key": "quiz"}]}
    )
    put(
        "unit-1",
        {
            "type": "unit",
            "title": "Unit 1, revised",
            "members": [{"key": "intro", "pin": intro_v1}, {"key": "quiz"}, {"key": "cheatsheet"}],
        },
    )
    put("unit-2", {"type": "unit", "title": "Unit 2", "members": [{"key": "video"}, {"key": "cheatsheet"}]})
    put(
        "ss-1",
        {"type": "subsection", "title": "SS 1", "members": [{"key": "unit-1", "pin": unit_v1}, {"key": "unit-2"}]},
    )
    put("s-1", {"type": "section", "title": "Section 1", "members": [{"key": "ss-1"}]})
    put("course", {"type": "course", "title": "Course", "base_path": "/course", "members": [{"key": "s-1"}]})
    put("money", {"type": "taxon", "title": "Money", "base_path": "/money"})
    put("tax", {"type": "page", "title": "Tax", "base_path": "/tax", "links": {"parent": ["money"]}})
    put("tax-cy", {"type": "page", "title": "Treth", "locale": "cy", "content_id": "tax", "base_path": "/cy/tax"})
    put("old-tax", {"type": "page", "title": "Old tax", "base_path": "/old-tax"})
    content.publish(repo, [PublishTarget(k) for k in ("course", "tax", "tax-cy", "old-tax")], author=ADA)
    content.unpublish(repo, "old-tax", "withdrawn", author=ADA, explanation="Replaced by /tax")
    put("tax", {"type": "page", "title": "Tax (draft)", "base_path": "/tax", "links": {"parent": ["money"]}})
    return repo

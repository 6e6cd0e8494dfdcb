"""Erasure: after it, no copy holds the erased bytes, and everything else means what it meant."""

from __future__ import annotations

import pytest

from gitstore import ContentRepository, content
from gitstore.bundles.api import export_bundle
from gitstore.containers.api import member_list, resolve_tree
from gitstore.containers.tree import View
from gitstore.entities import api as entities
from gitstore.erasure import ERASED_TITLE, erase, erasures
from gitstore.errors import Conflict, InvalidInput, VersionNotFound
from gitstore.events import read_events
from gitstore.publishing import api as publishing
from gitstore.publishing.mirror import ensure_live_mirror
from tests.conftest import ADA, GRACE, fsck_strict, git, object_bytes


def build(repo: ContentRepository) -> dict[str, str]:
    """A page with a secret in version 2 (kept by version 3), pinned at version 2 by a unit."""
    html = "<p>Public paragraph.</p>\n<p>Another line.</p>\n"
    content.put_draft(repo, "page", {"type": "page", "title": "Page V1TITLE", "fields": {"body": html}}, author=ADA)
    secret = html + "<p>V2SECRETBODY about a person.</p>\n"
    v2 = content.patch_draft(repo, "page", {"fields": {"body": secret}}, author=GRACE).entity.commit
    content.publish(repo, [publishing.PublishTarget("page")], author=ADA)
    content.patch_draft(repo, "page", {"title": "Page V3TITLE"}, author=ADA)
    content.put_draft(repo, "other", {"type": "page", "title": "Other", "fields": {"body": html}}, author=ADA)
    content.put_draft(
        repo, "unit", {"type": "container", "title": "Unit", "members": [{"key": "page", "pin": v2}]}, author=ADA
    )
    content.publish_all_drafts(repo, author=ADA)
    return {"v2": v2}


def test_erasing_a_version_removes_its_bytes_from_every_copy_and_keeps_the_rest(repo: ContentRepository) -> None:
    build(repo)
    other_etag = entities.get_entity(repo, "other", state="draft").commit
    unit_etag = entities.get_entity(repo, "unit", state="draft").commit
    before = [(e.id, e.key, e.kind) for e in read_events(repo, limit=1000).items]
    cursor = before[3][0]
    assert b"V2SECRETBODY" in object_bytes(repo.path)

    done = erase(repo, "page", author=GRACE, reason="Court order 2026/123", version=2)

    assert b"V2SECRETBODY" not in object_bytes(repo.path)
    assert b"V2SECRETBODY" not in object_bytes(ensure_live_mirror(repo))
    assert b"V2SECRETBODY" not in b"".join(export_bundle(repo, state="draft"))
    # version 1 wrote nothing erased; versions 2 and 3 held the body, and lose it
    versions = {v.version: v for v in entities.list_versions(repo, "page").items}
    assert entities.get_entity(repo, "page", version=1).fields["body"].startswith("<p>Public")
    assert "body" not in entities.get_entity(repo, "page", version=2).fields
    assert "body" not in entities.get_entity(repo, "page", state="draft").fields
    assert len(versions) == 3
    # other entities' ETags stand, the unit's pin still resolves (to the rewritten version)
    assert entities.get_entity(repo, "other", state="draft").commit == other_etag
    assert entities.get_entity(repo, "unit", state="draft").commit == unit_etag
    [member] = resolve_tree(repo, "unit", View("draft")).members or []
    assert (member.key, member.version) == ("page", 2)
    assert member_list(repo, "unit", kind="author")[0].pin == done.commits[build_pin(repo, done)]
    # event ids mean the same events, and a cursor from before resumes where it was
    after = [(e.id, e.key, e.kind) for e in read_events(repo, limit=1000).items]
    assert after == before
    assert [e.id for e in read_events(repo, after=cursor, limit=1000).items] == [e[0] for e in before[4:]]
    # who, when and why are on the record, in git
    [record] = erasures(repo)
    assert (record.key, record.version, record.reason, record.by) == ("page", 2, "Court order 2026/123", GRACE)
    assert "Court order 2026/123" in git(repo.path, "log", "-1", "--format=%B", "refs/meta/erasures")
    assert "Gitstore-Erased: 0001" in git(repo.path, "log", "-1", "--format=%B", "refs/drafts/page")
    fsck_strict(repo.path)
    fsck_strict(ensure_live_mirror(repo))


def build_pin(repo: ContentRepository, done: object) -> str:
    """The old commit the unit's manifest still names."""
    line = git(repo.path, "show", "refs/drafts/unit:members.json")
    return line.split('"pin":"')[1].split('"')[0]


def test_erasing_every_version_leaves_a_readable_redacted_entity(repo: ContentRepository) -> None:
    build(repo)
    erase(repo, "page", author=GRACE, reason="Takedown")
    everything = object_bytes(repo.path) + object_bytes(ensure_live_mirror(repo))
    for marker in (b"V1TITLE", b"V2SECRETBODY", b"V3TITLE"):
        assert marker not in everything
    live = entities.get_entity(repo, "page", state="published")
    assert (live.title, live.fields) == (ERASED_TITLE, {})
    assert b"Public paragraph" in object_bytes(repo.path)  # the other page's identical body stays
    content.patch_draft(repo, "page", {"title": "Written again"}, author=ADA)  # and the entity goes on
    fsck_strict(repo.path)


def test_erasure_refuses_what_it_cannot_do_and_writes_nothing(repo: ContentRepository) -> None:
    build(repo)
    refs = git(repo.path, "for-each-ref")
    with pytest.raises(InvalidInput):
        erase(repo, "page", author=GRACE, reason=" ")
    with pytest.raises(VersionNotFound):
        erase(repo, "page", author=GRACE, reason="x", version=9)
    content.publish(repo, [publishing.PublishTarget("page")], author=ADA)
    content.unpublish(repo, "page", "withdrawn", author=ADA, explanation="Old")
    refs = git(repo.path, "for-each-ref")
    with pytest.raises(Conflict):
        erase(repo, "page", author=GRACE, reason="x", version=4)  # the unpublish wrote no content
    assert git(repo.path, "for-each-ref") == refs

"""Properties of the entity model: what a client may send, how it is laid out as files in git,
and how merge patches apply. Mostly pure functions: an example costs microseconds, or a few
milliseconds where git itself is asked."""

from __future__ import annotations

import math
import re
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pygit2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitstore.entities.api import merge_patch
from gitstore.entities.document import (
    ENTITY_FILE,
    TEXT_DIR,
    Member,
    document_to_files,
    files_to_document,
    members_to_bytes,
    parse_document,
    writable,
)
from gitstore.errors import InvalidDocument, InvalidName
from gitstore.names import validate_key, validate_repo_name
from gitstore.storage.trees import entity_path, write_files
from tests.properties.strategies import documents, json_values, multi_line_text, names

# Written from Windows' file naming rules and git's verify_path() (fsck's .git, NTFS and HFS+
# lookalike checks), not from gitstore's rules, so that the two can disagree.
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_PORTABLE = re.compile(r"[a-z0-9_-][a-z0-9_.-]*")


def portable(component: str) -> bool:
    """A file or directory name every OS and every git checkout takes as itself."""
    return (
        _PORTABLE.fullmatch(component) is not None
        and not component.endswith(".")
        and component.split(".", 1)[0] not in _WINDOWS_DEVICES
    )


def validate_key_or_none(key: str) -> str | None:
    try:
        return validate_key(key)
    except InvalidName:
        return None


keys = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True).filter(validate_key_or_none)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path_factory.mktemp("scratch")), bare=True)


# -- names -------------------------------------------------------------------------------------


@given(names)
def test_a_key_is_either_refused_or_safe_as_a_ref_and_a_directory_everywhere(key: str) -> None:
    if validate_key_or_none(key) is None:
        return  # InvalidName, and only InvalidName: anything else would have propagated
    assert key == unicodedata.normalize("NFC", key).lower(), "no case or normalisation twin can exist"
    assert all(portable(part) for part in entity_path(key).split("/"))
    assert pygit2.reference_is_valid_name(f"refs/drafts/{key}")
    # git's own implementation too, not only libgit2's.
    assert subprocess.run(["git", "check-ref-format", f"refs/drafts/{key}"]).returncode == 0


@given(names)
def test_a_key_makes_a_tree_entry_git_fsck_accepts(scratch: pygit2.Repository, key: str) -> None:
    if validate_key_or_none(key) is None:
        return
    builder = scratch.TreeBuilder()
    builder.insert(key, scratch.create_blob(b"x"), pygit2.enums.FileMode.BLOB)  # libgit2 refuses .git and the like
    tree = builder.write()
    done = subprocess.run(
        ["git", "--git-dir", scratch.path, "fsck", "--strict", "--no-dangling", str(tree)], capture_output=True
    )
    assert done.returncode == 0, done.stderr


@given(names)
def test_a_repository_name_is_either_refused_or_a_portable_directory_in_the_data_dir(name: str) -> None:
    try:
        validate_repo_name(name)
    except InvalidName:
        return
    assert portable(name) and portable(f"{name}.git")
    assert Path("/data", f"{name}.git").resolve().parent == Path("/data")


# -- documents and their files -----------------------------------------------------------------


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(["type", "title", "fields", "links", "x"]), json_values)))
def test_any_json_is_either_a_document_or_an_invalid_document(data: Any) -> None:
    try:
        parse_document(data)
    except InvalidDocument as exc:
        assert exc.extra["errors"], "every refusal says what is wrong"


@given(
    st.one_of(
        st.integers(min_value=2**64),
        st.integers(max_value=-(2**63) - 1),
        st.sampled_from([math.nan, math.inf, -math.inf, b"bytes", {1, 2}]),
    )
)
def test_a_value_json_cannot_hold_exactly_is_refused_not_rewritten(value: Any) -> None:
    # orjson would raise on these, or silently write NaN as null.
    with pytest.raises(InvalidDocument):
        parse_document({"type": "page", "title": "T", "fields": {"deep": [{"x": value}]}})


@given(keys, documents())
def test_a_document_round_trips_through_its_files(key: str, data: dict[str, Any]) -> None:
    doc = parse_document(data)
    assert files_to_document(document_to_files(key, doc)) == (doc, False)


@given(keys, documents())
def test_files_are_deterministic_whatever_order_the_fields_came_in(key: str, data: dict[str, Any]) -> None:
    doc = parse_document(data)
    shuffled = doc._replace(fields=dict(reversed(doc.fields.items())))
    assert document_to_files(key, shuffled) == document_to_files(key, doc)


@given(keys, documents())
def test_every_file_name_is_portable_and_none_collide_on_any_file_system(key: str, data: dict[str, Any]) -> None:
    paths = list(document_to_files(key, parse_document(data)))
    assert all(portable(part) for path in paths for part in path.split("/"))
    folded = {unicodedata.normalize("NFC", p).casefold() for p in paths}
    assert len(folded) == len(paths)


# Text with a NUL byte stays inline: git would take its file for binary and show no diff.
text_files = multi_line_text.filter(lambda text: "\x00" not in text)


@given(keys, documents(), text_files)
def test_editing_a_text_field_changes_its_own_file_and_nothing_else(key: str, data: dict[str, Any], text: str) -> None:
    doc = parse_document(data)
    before = document_to_files(key, doc._replace(fields={**doc.fields, "body": "first\n"}))
    after = document_to_files(key, doc._replace(fields={**doc.fields, "body": text}))
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert changed <= {f"{TEXT_DIR}/body.txt"}
    assert after[f"{TEXT_DIR}/body.txt"] == text.encode()


@given(keys, documents())
def test_entity_json_is_sorted_pretty_json_ending_in_a_newline(key: str, data: dict[str, Any]) -> None:
    text = document_to_files(key, parse_document(data))[ENTITY_FILE].decode()
    lines = text.splitlines()
    assert text.endswith("\n") and lines[0] == "{" and lines[-1] == "}"
    top = [line.split('"')[1] for line in lines if re.match(r'  "', line)]
    assert top == sorted(top), "one top-level name per line, sorted, so a change is a small diff"


@given(st.lists(st.tuples(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), st.none() | st.just("a" * 40))))
def test_a_manifest_is_one_member_per_line(rows: list[tuple[str, str | None]]) -> None:
    members = tuple(Member(k, p) for k, p in rows)
    lines = members_to_bytes(members).decode().splitlines()
    assert len(lines) == (len(members) + 2 if members else 1)

    # A reorder moves lines (and at most the trailing comma), so it is a line-for-line diff.
    def rows_of(manifest: tuple[Member, ...]) -> list[bytes]:
        return sorted(line.rstrip(b",") for line in members_to_bytes(manifest).splitlines())

    assert rows_of(members[::-1]) == rows_of(members)


@given(keys, documents())
def test_a_written_tree_holds_plain_files_and_directories_only(
    scratch: pygit2.Repository, key: str, data: dict[str, Any]
) -> None:
    # No client input can make a symlink (120000) or a submodule (160000): a checkout of either
    # would point outside the entity, or at another repository.
    tree = scratch[write_files(scratch, document_to_files(key, parse_document(data)))]
    modes = {pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.TREE}
    stack = [tree]
    while stack:
        for entry in stack.pop():
            assert entry.filemode in modes, (entry.name, oct(entry.filemode))
            if entry.filemode == pygit2.enums.FileMode.TREE:
                stack.append(scratch[entry.id])


# -- merge patches (RFC 7396) ------------------------------------------------------------------

objects = st.dictionaries(st.text(max_size=5), json_values, max_size=5)


@given(json_values, json_values)
def test_a_merge_patch_applied_twice_is_applied_once(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@given(objects, objects)
def test_a_merge_patch_removes_what_it_nulls_and_keeps_what_it_does_not_name(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    result = merge_patch(target, patch)
    for name, value in patch.items():
        assert (name in result) == (value is not None)
    for name in target.keys() - patch.keys():
        assert result[name] == target[name]


@given(documents())
def test_an_empty_patch_gives_back_the_same_document(data: dict[str, Any]) -> None:
    doc = parse_document(data)
    assert parse_document(merge_patch(writable(doc), {})) == doc

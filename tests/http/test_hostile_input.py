"""Hostile input (issue 7): names that break git or a file system somewhere, repository names
that try to leave the data directory, pins that are not what they claim, and bodies built to
hurt a parser. Each gets a clear 4xx problem, and nothing is written: no ref, no lock, no
repository directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from tests.conftest import fsck_strict, git
from tests.http.refusals import assert_refused

E = "/repos/demo/entities"
JSON = {"Content-Type": "application/json"}
PATCH = {"Content-Type": "application/merge-patch+json"}
PAGE = b'{"type": "page", "title": "T"}'


def unit_with(member: str) -> bytes:
    return b'{"type": "unit", "title": "U", "members": [' + member.encode() + b"]}"


# (method, path, body, headers, status); <tree>, <blob>, <pin> (a commit of `existing`) and
# <other> (a commit of `other`) are filled in from the seeded repository.
CASES: dict[str, tuple[str, str, bytes, dict[str, str], int]] = {
    # Entity keys become ref names and directories in every clone.
    "zero-width non-joiner .git key": ("PUT", f"{E}/.g%E2%80%8Cit", PAGE, JSON, 422),
    "zero-width joiner .git key": ("PUT", f"{E}/.g%E2%80%8Dit", PAGE, JSON, 422),
    "8.3 short name of .git as key": ("PUT", f"{E}/git~1", PAGE, JSON, 422),
    "upper-case .GIT key": ("PUT", f"{E}/.GIT", PAGE, JSON, 422),
    ".gitmodules key": ("PUT", f"{E}/.gitmodules", PAGE, JSON, 422),
    ".gitattributes key": ("PUT", f"{E}/.gitattributes", PAGE, JSON, 422),
    "trailing dot key": ("PUT", f"{E}/trailing.", PAGE, JSON, 422),
    "trailing space key": ("PUT", f"{E}/trailing%20", PAGE, JSON, 422),
    "backslash key": ("PUT", f"{E}/a%5Cb", PAGE, JSON, 422),
    "colon key": ("PUT", f"{E}/a:b", PAGE, JSON, 422),
    "NUL in key": ("PUT", f"{E}/a%00b", PAGE, JSON, 422),
    "newline in key": ("PUT", f"{E}/a%0Ab", PAGE, JSON, 422),
    "escape sequence in key": ("PUT", f"{E}/a%1B%5B2J", PAGE, JSON, 422),
    "DEL in key": ("PUT", f"{E}/a%7F", PAGE, JSON, 422),
    "non-NFC key": ("PUT", f"{E}/e%CC%81", PAGE, JSON, 422),
    "fullwidth lookalike key": ("PUT", f"{E}/%EF%BD%87%EF%BD%89%EF%BD%94", PAGE, JSON, 422),
    "Kelvin sign key (folds to k)": ("PUT", f"{E}/%E2%84%AA", PAGE, JSON, 422),
    "Windows device key with extension": ("PUT", f"{E}/nul.txt", PAGE, JSON, 422),
    "git's HEAD as key": ("PUT", f"{E}/head", PAGE, JSON, 422),
    "ref expression as key": ("PUT", f"{E}/main@%7B1%7D", PAGE, JSON, 422),
    # Names inside a body: members, link targets and types, content ids, container types.
    "member key .git": ("PUT", f"{E}/u", unit_with('{"key": ".git"}'), JSON, 422),
    "member key with a slash": ("PUT", f"{E}/u", unit_with('{"key": "a/b"}'), JSON, 422),
    "link target .gitmodules": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "links": {"related": [".gitmodules"]}}',
        JSON,
        422,
    ),
    "link type .git": ("PUT", f"{E}/k", b'{"type": "page", "title": "T", "links": {".git": ["existing"]}}', JSON, 422),
    "link type with a slash": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "links": {"a/b": ["existing"]}}',
        JSON,
        422,
    ),
    "over-long link type": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "links": {"' + b"l" * 65 + b'": ["existing"]}}',
        JSON,
        422,
    ),
    "content_id with a backslash": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "content_id": "a\\\\b"}',
        JSON,
        422,
    ),
    "entity type .git": ("PUT", f"{E}/k", b'{"type": ".git", "title": "T"}', JSON, 422),
    "over-long entity type": ("PUT", f"{E}/k", b'{"type": "' + b"t" * 65 + b'", "title": "T"}', JSON, 422),
    "container type .git": ("PUT", "/repos/demo/types/.git", b'{"allowed_member_types": null}', JSON, 422),
    "container type 8.3 name": ("PUT", "/repos/demo/types/git~1", b'{"allowed_member_types": null}', JSON, 422),
    "allowed member type with a colon": (
        "PUT",
        "/repos/demo/types/unit",
        b'{"allowed_member_types": ["a:b"]}',
        JSON,
        422,
    ),
    "link type name .gitmodules": ("PUT", "/repos/demo/link-types/.gitmodules", b'{"reverse": null}', JSON, 422),
    "reverse link type with dot-dot": ("PUT", "/repos/demo/link-types/cites", b'{"reverse": "../x"}', JSON, 422),
    # Repository names become directories of the data dir and the directory `git clone` makes.
    "repository named con": ("POST", "/repos", b'{"name": "con"}', JSON, 422),
    "repository named nul.txt": ("POST", "/repos", b'{"name": "nul.txt"}', JSON, 422),
    "repository named lpt1": ("POST", "/repos", b'{"name": "lpt1"}', JSON, 422),
    "repository named .git": ("POST", "/repos", b'{"name": ".git"}', JSON, 422),
    "repository name with a backslash": ("POST", "/repos", b'{"name": "a\\\\b"}', JSON, 422),
    "repository name with a colon": ("POST", "/repos", b'{"name": "c:"}', JSON, 422),
    "repository name with NUL": ("POST", "/repos", b'{"name": "a\\u0000"}', JSON, 422),
    "non-ASCII repository name": ("POST", "/repos", b'{"name": "caf\\u00e9"}', JSON, 422),
    "over-long repository name": ("POST", "/repos", b'{"name": "' + b"r" * 65 + b'"}', JSON, 422),
    # Pins name a commit of the member's own draft branch, in full, and nothing else.
    "abbreviated pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "<pin7>"}'), JSON, 422),
    "upper-case pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "<PIN>"}'), JSON, 422),
    "unknown pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "' + "1" * 40 + '"}'), JSON, 422),
    "tree as pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "<tree>"}'), JSON, 422),
    "blob as pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "<blob>"}'), JSON, 422),
    "another entity's commit as pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "<other>"}'), JSON, 422),
    "HEAD~1 as pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "HEAD~1"}'), JSON, 422),
    "branch name as pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "main"}'), JSON, 422),
    "ref name as pin": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": "refs/heads/draft"}'), JSON, 422),
    "pin as a number": ("PUT", f"{E}/u", unit_with('{"key": "existing", "pin": 1}'), JSON, 422),
    "pin on a missing member": ("PUT", f"{E}/u", unit_with('{"key": "nope", "pin": "<pin>"}'), JSON, 422),
    # The same rules for every other place a client names a commit.
    "tree as base": ("PUT", f"{E}/existing?base=<tree>", PAGE, JSON, 404),
    "blob as base of a patch": ("PATCH", f"{E}/existing?base=<blob>", b'{"title": "x"}', PATCH, 404),
    "another entity's commit as base": ("PUT", f"{E}/existing?base=<other>", PAGE, JSON, 404),
    "unknown all-digit commit as base": ("PUT", f"{E}/existing?base=" + "1" * 40, PAGE, JSON, 404),
    "ref expression as base": ("PUT", f"{E}/existing?base=HEAD~1", PAGE, JSON, 422),
    "tree as commit": ("GET", f"{E}/existing?commit=<tree>", b"", {}, 404),
    "another entity's commit to restore": ("POST", f"{E}/existing/restore", b'{"commit": "<other>"}', JSON, 404),
    "blob to diff from": ("GET", f"{E}/existing/diff?from=<blob>", b"", {}, 404),
    "ref expression to diff from": ("GET", f"{E}/existing/diff?from=HEAD~1", b"", {}, 422),
    "reflog expression to diff to": ("GET", f"{E}/existing/diff?to=draft@%7B1%7D", b"", {}, 422),
    "superscript digit as version": ("GET", f"{E}/existing/diff?from=%C2%B2", b"", {}, 422),
    "Arabic-Indic digit as version": ("GET", f"{E}/existing/diff?to=%D9%A1", b"", {}, 422),
    "version past SQLite's integers": ("GET", f"{E}/existing?version=" + "9" * 30, b"", {}, 404),
    "diff from a version past SQLite's integers": ("GET", f"{E}/existing/diff?from=" + "9" * 30, b"", {}, 404),
    "members of a version past SQLite's integers": ("GET", f"{E}/existing/members?version=" + "9" * 30, b"", {}, 404),
    "versions from a cursor past SQLite's integers": ("GET", f"{E}/existing/versions?cursor=" + "9" * 30, b"", {}, 404),
    # Bodies built to hurt a parser (more in test_bad_input.py).
    "deeply nested arrays": (
        "PUT",
        f"{E}/k",
        b'{"type":"page","title":"T","fields":{"a":' + b"[" * 2000 + b"]" * 2000 + b"}}",
        JSON,
        400,
    ),
    "nesting past the parser at the top": ("PUT", f"{E}/k", b"[" * 5000 + b"]" * 5000, JSON, 400),
    "UTF-8 byte order mark": ("PUT", f"{E}/k", b"\xef\xbb\xbf" + PAGE, JSON, 400),
    "overlong UTF-8 encoding of a slash": ("PUT", f"{E}/k", b'{"type": "page", "title": "\xc0\xaf"}', JSON, 400),
    "UTF-16 body": ("PUT", f"{E}/k", PAGE.decode().encode("utf-16"), JSON, 400),
    "CESU-8 surrogate": ("PUT", f"{E}/k", b'{"type": "page", "title": "\xed\xa0\x80"}', JSON, 400),
    "duplicate key hidden by an escape": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "A", "t\\u0069tle": "B"}',
        JSON,
        400,
    ),
    "number past a double": ("PUT", f"{E}/k", b'{"type": "page", "title": "T", "fields": {"n": 1e400}}', JSON, 400),
    "integer past 64 bits": (
        "PUT",
        f"{E}/k",
        b'{"type": "page", "title": "T", "fields": {"n": 18446744073709551616}}',
        JSON,
        422,
    ),
    "integer past 64 bits in a merge patch": (
        "PATCH",
        f"{E}/existing",
        b'{"fields": {"n": -9223372036854775809}}',
        PATCH,
        422,
    ),
    "trailing garbage": ("PUT", f"{E}/k", PAGE + b"x", JSON, 400),
    "two documents": ("PUT", f"{E}/k", PAGE + PAGE, JSON, 400),
    "NUL after the document": ("PUT", f"{E}/k", PAGE + b"\x00", JSON, 400),
}


@dataclass
class Seeded:
    client: TestClient
    data_dir: Path
    values: dict[str, str]

    def fill(self, text: str) -> str:
        for name, value in self.values.items():
            text = text.replace(f"<{name}>", value)
        return text


# One repository for the whole module: a refused request writes nothing (each case checks),
# so the cases cannot disturb each other. No rate limit: a case may send dozens of requests.
@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    settings = Settings(data_dir=data_dir, load_samples=False, max_body_bytes=64 * 1024, rate_limit="")
    with TestClient(create_app(settings)) as client:
        client.post("/repos", json={"name": "demo"}).raise_for_status()
        existing = client.put(f"{E}/existing", json={"type": "component", "title": "E", "fields": {"html": "a\nb\n"}})
        other = client.put(f"{E}/other", json={"type": "component", "title": "O"})
        pin = existing.json()["commit"]
        repo = data_dir / "demo.git"
        values = {
            "pin": pin,
            "pin7": pin[:7],
            "PIN": pin.upper(),
            "other": other.json()["commit"],
            "tree": git(repo, "rev-parse", f"{pin}^{{tree}}").strip(),
            "blob": git(repo, "rev-parse", f"{pin}:entity.json").strip(),
        }
        yield Seeded(client, data_dir, values)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_hostile_input_gets_a_problem_and_writes_nothing(seeded: Seeded, case: str) -> None:
    method, path, body, headers, status = CASES[case]
    assert_refused(
        seeded.client,
        seeded.data_dir,
        method,
        seeded.fill(path),
        seeded.fill(body.decode("latin-1")).encode("latin-1"),
        headers,
        status,
    )


# Every route that takes a key refuses a hostile one the same way, before touching anything.
KEY_ROUTES = [
    ("GET", "", b"", {}),
    ("GET", "/versions", b"", {}),
    ("GET", "/diff", b"", {}),
    ("GET", "/blame", b"", {}),
    ("GET", "/tree", b"", {}),
    ("GET", "/members", b"", {}),
    ("GET", "/containers", b"", {}),
    ("GET", "/expanded-links", b"", {}),
    ("GET", "/dependents", b"", {}),
    ("PUT", "", PAGE, JSON),
    ("PATCH", "", b'{"title": "x"}', PATCH),
    ("DELETE", "", b"", {}),
    ("POST", "/publish", b"", {}),
    ("POST", "/discard", b"", {}),
    ("POST", "/restore", b'{"version": 1}', JSON),
    ("POST", "/unpublish", b'{"type": "gone"}', JSON),
    ("POST", "/republish", b"", {}),
]
HOSTILE_KEYS = [".git", "git~1", "a%5Cb", "%2e%2e", ".g%E2%80%8Cit", "nul.txt"]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_every_route_refuses_a_hostile_key(seeded: Seeded, key: str) -> None:
    for method, suffix, body, headers in KEY_ROUTES:
        assert_refused(seeded.client, seeded.data_dir, method, f"{E}/{key}{suffix}", body, headers, 422)


REPO_ROUTES = [
    ("GET", "", b"", {}),
    ("GET", "/entities", b"", {}),
    ("GET", "/entities/k", b"", {}),
    ("PUT", "/entities/k", PAGE, JSON),
    ("GET", "/publish-log", b"", {}),
    ("GET", "/activity", b"", {}),
    ("GET", "/events", b"", {}),
    ("GET", "/types", b"", {}),
    ("PUT", "/types/unit", b'{"allowed_member_types": null}', JSON),
    ("GET", "/link-types", b"", {}),
    ("PUT", "/link-types/cites", b'{"reverse": null}', JSON),
    ("GET", "/documents/k", b"", {}),
    ("GET", "/paths/x", b"", {}),
    ("POST", "/publish", b'{"all_drafts": true}', JSON),
    ("POST", "/prune", b"", {}),
]
# Each decodes to a name no repository can have; the client sends it as it is (no dot-segment
# folding on percent-encoded dots).
HOSTILE_REPOS = ["%2e%2e", "%2E", "a%5Cb", ".git", "con", "demo%00", "Demo"]


@pytest.mark.parametrize("repo", HOSTILE_REPOS)
def test_every_route_refuses_a_hostile_repository_name(seeded: Seeded, repo: str) -> None:
    for method, suffix, body, headers in REPO_ROUTES:
        assert_refused(seeded.client, seeded.data_dir, method, f"/repos/{repo}{suffix}", body, headers, 422)
    # git's smart HTTP too: the ref advertisement and the fetch.
    refs = f"/git/{repo}.git/info/refs?service=git-upload-pack"
    assert_refused(seeded.client, seeded.data_dir, "GET", refs, b"", {}, 422)
    pack = {"Content-Type": "application/x-git-upload-pack-request"}
    assert_refused(seeded.client, seeded.data_dir, "POST", f"/git/{repo}.git/git-upload-pack", b"0000", pack, 422)


def test_an_encoded_slash_in_a_repository_name_matches_no_route(seeded: Seeded) -> None:
    for path in ["/repos/demo%2f..%2fother/entities", "/git/demo%2fx.git/info/refs?service=git-upload-pack"]:
        assert_refused(seeded.client, seeded.data_dir, "GET", path, b"", {}, 404)


# -- accepted, but never as a file name --------------------------------------------------------

# Text fields move to fields/<name>.txt only under a name every OS takes; any other name keeps
# its text inside entity.json, so a client never chooses a path in the tree.
UNSAFE_FIELD_NAMES = [
    "con",
    "nul",
    "aux",
    "com1",
    "lpt9",
    ".git",
    ".gitmodules",
    "git~1",
    "Body",
    "\u00e9",
    "e\u0301",
    "a/b",
    "a\\b",
    "a:b",
    "..",
    "trailing.",
    "a\x00b",
    "x" * 65,
]


@pytest.mark.parametrize("name", UNSAFE_FIELD_NAMES, ids=[ascii(n) for n in UNSAFE_FIELD_NAMES])
def test_a_text_field_under_an_unsafe_name_stays_inside_entity_json(seeded: Seeded, name: str) -> None:
    key = f"field-{UNSAFE_FIELD_NAMES.index(name)}"
    r = seeded.client.put(f"{E}/{key}", json={"type": "page", "title": "T", "fields": {name: "two\nlines\n"}})
    assert r.status_code == 201, r.text
    assert tree_entries(seeded, r.json()["commit"]) == {"entity.json": 0o100644}
    assert seeded.client.get(f"{E}/{key}", params={"state": "draft"}).json()["fields"] == {name: "two\nlines\n"}


def test_field_names_that_differ_only_in_case_or_normalisation_never_share_a_file(seeded: Seeded) -> None:
    fields = {"body": "a\n", "Body": "b\n", "BODY": "c\n", "\u00e9": "d\n", "e\u0301": "e\n"}
    r = seeded.client.put(f"{E}/twins", json={"type": "page", "title": "T", "fields": fields})
    assert tree_entries(seeded, r.json()["commit"]) == {"entity.json": 0o100644, "fields/body.txt": 0o100644}
    assert seeded.client.get(f"{E}/twins", params={"state": "draft"}).json()["fields"] == fields
    fsck_strict(seeded.data_dir / "demo.git")


def tree_entries(seeded: Seeded, commit: str) -> dict[str, int]:
    """Every blob of the commit's tree, by path, with its mode (no symlinks, no submodules)."""
    repo = pygit2.Repository(str(seeded.data_dir / "demo.git"))
    found: dict[str, int] = {}
    stack = [("", repo[commit].peel(pygit2.Tree))]
    while stack:
        prefix, tree = stack.pop()
        for entry in tree:
            if entry.filemode == pygit2.enums.FileMode.TREE:
                stack.append((f"{prefix}{entry.name}/", repo[entry.id]))
            else:
                found[f"{prefix}{entry.name}"] = entry.filemode
    return found


def test_cursors_past_sqlites_integers_read_from_the_start(seeded: Seeded) -> None:
    # Regression: these were OverflowErrors (500) in the index.
    for path in ["/repos/demo/activity", "/repos/demo/publish-log"]:
        r = seeded.client.get(path, params={"cursor": "9" * 30})
        assert r.status_code == 200, r.text
        assert json.loads(r.text)["items"] == seeded.client.get(path).json()["items"]

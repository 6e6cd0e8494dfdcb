"""The credentials file: secrets never stored, changes from many processes never lost."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from gitstore.access.credentials import Credentials
from gitstore.access.scopes import Principal, narrow, parse_grants, parse_scope_string
from gitstore.errors import InvalidInput


def test_a_token_is_stored_only_as_a_digest_in_a_private_file(tmp_path: Path) -> None:
    credentials = Credentials(tmp_path / "credentials.json")
    issued = credentials.create_token("Ada Lovelace", "ada@example.org", {"demo": ["write"]})
    stored = (tmp_path / "credentials.json").read_text()
    assert issued.secret not in stored and issued.secret.split("_", 2)[2] not in stored
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600
    principal = credentials.authenticate_token(issued.secret)
    assert principal is not None and principal.author.name == "Ada Lovelace"
    assert principal.may("demo", "preview") and not principal.may("demo", "publish")
    assert not principal.may("other", "read")
    tampered = issued.secret[:-1] + ("B" if issued.secret.endswith("A") else "A")
    assert credentials.authenticate_token(tampered) is None


@pytest.mark.parametrize(
    "scopes", [{}, {"demo": []}, {"demo": ["root"]}, {"../x": ["read"]}, {"demo": "write"}, {"Demo": ["read"]}]
)
def test_invalid_scopes_are_refused(tmp_path: Path, scopes: object) -> None:
    with pytest.raises(InvalidInput):
        Credentials(tmp_path / "c.json").create_token("A", "a@example.org", scopes)  # type: ignore[arg-type]
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("name", ["Eve <eve@x>", "Eve\nGitstore-Batch: forged", ""])
def test_names_that_would_break_a_git_author_line_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        Credentials(tmp_path / "c.json").create_token(name, "eve@example.org", {"demo": ["read"]})


def test_scopes_imply_weaker_ones_and_a_narrowed_grant_never_exceeds_its_holder() -> None:
    grants = parse_grants({"demo": ["write"], "*": ["read"]})
    assert grants["demo"] == {"read", "preview", "write"}
    person = Principal("A", "a@example.org", grants)
    assert person.may("anything", "read") and not person.may("anything", "preview")
    assert narrow(grants, parse_scope_string("demo:publish demo:preview other:read *:admin")) == {
        "demo": {"read", "preview"},
        "other": {"read"},
        "*": {"read"},
    }


def test_a_grant_may_name_any_repository_that_can_exist() -> None:
    # "head" is a fine repository name but a reserved entity key: grants were checked as keys.
    assert parse_grants({"head": ["read"], "fetch_head": ["write"]})["head"] == {"read"}


def _issue_many(path: str, worker: int) -> None:
    credentials = Credentials(path)
    for i in range(15):
        credentials.create_token(f"worker {worker}", f"w{worker}-{i}@example.org", {"demo": ["read"]})


def test_concurrent_changes_from_several_processes_are_all_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "credentials.json")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_issue_many, args=(path, w)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    assert len(Credentials(path).tokens()) == 60

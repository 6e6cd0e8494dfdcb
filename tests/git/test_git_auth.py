"""git speaks to a server with credentials the way git does: Basic auth with the token as the
password, after a 401 challenge. The same scopes decide what it may fetch."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import GRACE, token_for
from tests.git.conftest import Server, run_git
from tests.git.test_clone import seed


def url_with(server: Server, token: str, repo: str = "site", *, live: bool = False) -> str:
    return server.url.replace("http://", f"http://git:{token}@") + ("/git/live/" if live else "/git/") + f"{repo}.git"


def branches(url: str) -> set[str]:
    refs = run_git("ls-remote", url).stdout.split()
    return {r for r in refs if r.startswith("refs/heads/")}


def test_git_needs_a_token_and_sends_it_as_basic_auth(locked_server: Server, tmp_path: Path) -> None:
    seed(locked_server.repo)
    anonymous = run_git("clone", "-q", locked_server.clone_url(), str(tmp_path / "none"), check=False)
    # The 401 challenge makes git ask for credentials (no terminal here, so it gives up).
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr

    previewer = token_for(locked_server.data, {"site": ["preview"]}, who=GRACE)
    run_git("clone", "-q", url_with(locked_server, previewer), str(tmp_path / "full"))
    assert (tmp_path / "full").is_dir()
    assert "refs/heads/draft" in branches(url_with(locked_server, previewer))


def test_a_read_token_clones_the_public_copy_and_is_refused_the_full_repository(locked_server: Server) -> None:
    seed(locked_server.repo)
    reader = token_for(locked_server.data, {"site": ["read"]})
    assert branches(url_with(locked_server, reader, live=True)) == {"refs/heads/main"}
    full = run_git("ls-remote", url_with(locked_server, reader), check=False)
    assert full.returncode != 0 and "403" in full.stderr


def test_each_remote_serves_the_same_refs_whoever_asks(locked_server: Server) -> None:
    """One URL, one repository: a token that may see drafts gets the same public copy as a
    reader, so fetching with and without it never prunes refs."""
    seed(locked_server.repo)
    reader = token_for(locked_server.data, {"site": ["read"]})
    editor = token_for(locked_server.data, {"site": ["write"]})
    live = {run_git("ls-remote", url_with(locked_server, t, live=True)).stdout for t in (reader, editor)}
    assert len(live) == 1
    assert "refs/heads/draft" in run_git("ls-remote", url_with(locked_server, editor)).stdout


@pytest.mark.parametrize("scopes", [{"elsewhere": ["admin"]}, None])
def test_another_repositorys_token_or_a_wrong_one_gets_nothing(locked_server: Server, scopes: object) -> None:
    seed(locked_server.repo)
    token = token_for(locked_server.data, scopes) if scopes else "gst_000000000000_" + "A" * 43  # type: ignore[arg-type]
    done = run_git("ls-remote", url_with(locked_server, token), check=False)
    assert done.returncode != 0
    assert ("not found" in done.stderr) if scopes else ("Authentication failed" in done.stderr), done.stderr


def test_server_logs_hold_no_credentials_and_no_forged_lines(locked_server: Server) -> None:
    token = token_for(locked_server.data, {"site": ["preview"]})
    run_git("ls-remote", url_with(locked_server, token))
    requests = [
        urllib.request.Request(
            locked_server.url + "/repos/site/entities", headers={"Authorization": f"Bearer {token}"}
        ),
        urllib.request.Request(locked_server.url + f"/repos/site/entities?access_token={token}"),
        urllib.request.Request(locked_server.url + "/repos/site/entities/x%0d%0aFORGED%20200%20OK"),
    ]
    for request in requests:
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError:
            pass
    logs = "".join(p.read_text() for p in locked_server.data.parent.glob("server-*.log"))
    secret = token.split("_", 2)[2]
    assert '"GET /repos/site/entities?access_token=*** HTTP/1.1" 401' in logs  # masked, still a log line
    assert "info/refs" in logs and "Logging error" not in logs
    assert secret not in logs
    assert not any(line.startswith("FORGED") for line in logs.splitlines())

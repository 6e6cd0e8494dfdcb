"""The inter-node signature: good only for the node, request and moment it was made for."""

from __future__ import annotations

from gitstore.cluster.api import (
    MAX_AGE,
    Forwarded,
    forwarded_header,
    git_password,
    is_git_password,
    verify_forwarded,
    verify_git_password,
)

SECRET = b"k" * 32
NOW = 1_700_000_000.0


def test_a_forwarding_header_verifies_only_for_its_request_and_time() -> None:
    value = forwarded_header(SECRET, "node-1", "put", b"/repos/site/entities/a", "10.1.2.3", now=NOW)
    assert verify_forwarded(SECRET, value, "PUT", b"/repos/site/entities/a", now=NOW + 1) == Forwarded(
        "node-1", "10.1.2.3"
    )
    assert verify_forwarded(SECRET, value, "GET", b"/repos/site/entities/a", now=NOW) is None
    assert verify_forwarded(SECRET, value, "PUT", b"/repos/site/entities/b", now=NOW) is None
    assert verify_forwarded(b"another secret", value, "PUT", b"/repos/site/entities/a", now=NOW) is None
    assert verify_forwarded(SECRET, value, "PUT", b"/repos/site/entities/a", now=NOW + MAX_AGE + 1) is None
    assert verify_forwarded(SECRET, value, "PUT", b"/repos/site/entities/a", now=NOW - MAX_AGE - 1) is None
    for changed in (value.replace("node-1", "node-2"), value.replace("10.1.2.3", "127.0.0.1"), value[:-1] + "0"):
        assert verify_forwarded(SECRET, changed, "PUT", b"/repos/site/entities/a", now=NOW) is None
    for garbage in ("", "node=x", "node=x, ts=now, for=, sig=00", "=,=,", "ts=1, sig=" + "0" * 64):
        assert verify_forwarded(SECRET, garbage, "PUT", b"/", now=NOW) is None


def test_an_address_may_be_empty_but_not_swapped_in() -> None:
    value = forwarded_header(SECRET, "node-1", "GET", b"/repos/a", "", now=NOW)
    assert verify_forwarded(SECRET, value, "GET", b"/repos/a", now=NOW) == Forwarded("node-1", "")
    assert verify_forwarded(SECRET, value.replace("for=,", "for=127.0.0.1,"), "GET", b"/repos/a", now=NOW) is None


def test_a_git_password_is_bound_to_its_repository_and_time() -> None:
    password = git_password(SECRET, "node-2", "site", now=NOW)
    assert is_git_password(password) and not is_git_password("gst_abc")
    assert verify_git_password(SECRET, password, "site", now=NOW + 60) == "node-2"
    assert verify_git_password(SECRET, password, "other", now=NOW) is None
    assert verify_git_password(b"another secret", password, "site", now=NOW) is None
    assert verify_git_password(SECRET, password, "site", now=NOW + 3600) is None
    assert verify_git_password(SECRET, password.replace("node-2", "node-3"), "site", now=NOW) is None
    assert verify_git_password(SECRET, "node::", "site", now=NOW) is None

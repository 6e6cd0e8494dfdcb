"""The naming rules as the OpenAPI document states them (one regular expression each) are the
rules gitstore.names enforces: a name matches the pattern exactly when it is valid."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gitstore.names import KEY_PATTERN, REPO_NAME_PATTERN, key_problem, repo_name_problem

# Mostly the characters the rules are about, so that edge cases (dots, reserved words) come up.
_NAMES = st.one_of(
    st.text(alphabet="abcdefghilnoprtuxk0123456789._-", max_size=70),
    st.sampled_from(["con", "con.txt", "head", "head.x", "fetch_head", "a.lock", "a.", ".a", "a..b", "x.git"]),
    st.text(max_size=8),
)


@given(_NAMES)
def test_the_key_pattern_is_the_key_rule(name: str) -> None:
    assert bool(re.fullmatch(KEY_PATTERN, name)) == (key_problem(name) is None), name


@given(_NAMES)
def test_the_repository_name_pattern_is_the_repository_rule(name: str) -> None:
    assert bool(re.fullmatch(REPO_NAME_PATTERN, name)) == (repo_name_problem(name) is None), name


@given(st.from_regex(KEY_PATTERN, fullmatch=True))
def test_every_key_the_pattern_admits_is_valid(name: str) -> None:
    assert key_problem(name) is None, name

"""Numbers from GITSTORE_* variables: a value the setting cannot take stops the process with a
message naming the variable, before anything is served or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from gitstore.environment import seconds, whole_number
from gitstore.errors import BadSetting
from tests.test_cli import gitstore


def test_unset_or_empty_gives_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITSTORE_TEST_SECONDS", raising=False)
    assert seconds("GITSTORE_TEST_SECONDS", 2.5) == 2.5
    monkeypatch.setenv("GITSTORE_TEST_SECONDS", " ")
    assert seconds("GITSTORE_TEST_SECONDS", 2.5) == 2.5
    monkeypatch.setenv("GITSTORE_TEST_SECONDS", "0.25")
    assert seconds("GITSTORE_TEST_SECONDS", 2.5) == 0.25


@pytest.mark.parametrize(
    ("text", "positive", "complaint"),
    [
        ("3s", True, "must be a number of seconds, not '3s'"),
        ("-1", True, "above 0, not '-1'"),
        ("0", True, "above 0, not '0'"),
        ("nan", True, "above 0, not 'nan'"),
        ("inf", False, "of at least 0, not 'inf'"),
        ("-0.5", False, "of at least 0, not '-0.5'"),
    ],
)
def test_seconds_that_cannot_be_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, text: str, positive: bool, complaint: str
) -> None:
    monkeypatch.setenv("GITSTORE_TEST_SECONDS", text)
    with pytest.raises(BadSetting, match="^GITSTORE_TEST_SECONDS ") as refused:
        seconds("GITSTORE_TEST_SECONDS", 1, positive=positive)
    assert complaint in str(refused.value)


def test_zero_seconds_is_allowed_where_it_means_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITSTORE_HOUSEKEEPING", "0")
    assert Settings.from_env().housekeeping_seconds == 0


def test_whole_numbers_are_whole_and_at_least_their_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITSTORE_TEST_COUNT", "3")
    assert whole_number("GITSTORE_TEST_COUNT", 1, minimum=1) == 3
    for text, complaint in (("2.5", "a whole number, not '2.5'"), ("10MB", "a whole number"), ("0", "at least 1")):
        monkeypatch.setenv("GITSTORE_TEST_COUNT", text)
        with pytest.raises(BadSetting, match=complaint):
            whole_number("GITSTORE_TEST_COUNT", 1, minimum=1)


def test_the_service_settings_name_the_variable_at_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITSTORE_MAX_BODY", "10MB")
    with pytest.raises(BadSetting, match="GITSTORE_MAX_BODY must be a whole number, not '10MB'"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GITSTORE_MAX_BODY", "10MB"), ("GITSTORE_FAILOVER_SECONDS", "3s"), ("GITSTORE_LOCK_WAIT", "-1")],
)
def test_serve_refuses_a_bad_setting_with_one_line_and_starts_nothing(
    tmp_path: Path, variable: str, value: str
) -> None:
    data = tmp_path / "data"
    done = gitstore("serve", "--port", "0", env={"GITSTORE_DATA": str(data), variable: value})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {variable} must be"), done.stderr
    assert "Traceback" not in done.stderr
    assert not data.exists()  # nothing was created, let alone served

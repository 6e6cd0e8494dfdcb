"""What reaches a log line: no secret, and nothing a client can use to forge another line."""

from __future__ import annotations

import logging

import pytest

from api.logs import install_scrubbing, scrub

TOKEN = "gst_0123456789ab_" + "s3cr3t" * 7 + "x"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdHVkaW8ifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (f"token {TOKEN} used", "token gst_0123456789ab_*** used"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("Authorization: Basic Z2l0OnRva2Vu", "Authorization: Basic ***"),
        (f"GET /x?client_secret=hunter2&a=1 {JWT}", "GET /x?client_secret=***&a=1 ***"),
        ("/entities/x\r\nFORGED 200 OK", "/entities/x\\x0d\\x0aFORGED 200 OK"),
        ("bell\x07 and nul\x00", "bell\\x07 and nul\\x00"),
    ],
)
def test_scrub_masks_credentials_and_escapes_control_characters(raw: str, logged: str) -> None:
    assert scrub(raw) == logged


def test_every_logger_in_the_process_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    install_scrubbing()
    install_scrubbing()  # idempotent: one layer of scrubbing, not two
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("%s - %s", f"Bearer {TOKEN}", "path\nforged")
    (record,) = caplog.records
    assert record.getMessage() == "Bearer *** - path\\x0aforged"
    assert record.args == ("Bearer ***", "path\\x0aforged")  # still arguments, for positional formatters

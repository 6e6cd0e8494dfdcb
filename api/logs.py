"""Log lines never carry a secret, and never let a client forge a line.

Installed as the process's log record factory, so it covers uvicorn's access log, our own
loggers and any library's alike: in each record's message and string arguments, credentials
are masked (tokens, Authorization values, signed tokens, secrets in query strings) and CR/LF
and other control characters a client put in a path or header are escaped. Arguments stay
arguments, because formatters such as uvicorn's access log read them by position.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_SECRETS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (re.compile(r"gst_([0-9a-f]{12})_[A-Za-z0-9_-]+"), r"gst_\1_***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "***"),
    (re.compile(r"(?i)((?:access_token|client_secret|token|password)=)[^&\s\"]+"), r"\1***"),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def scrub(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def install_scrubbing() -> None:
    """Scrub every log record this process makes from now on (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "gitstore_scrubs", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return record

    factory.gitstore_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

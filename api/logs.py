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
from contextvars import ContextVar
from typing import Any

_SECRETS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (re.compile(r"gst_([0-9a-f]{12})_[A-Za-z0-9_-]+"), r"gst_\1_***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "***"),
    (re.compile(r"(?i)((?:access_token|client_secret|token|password)=)[^&\s\"]+"), r"\1***"),
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Whatever any of the above could match starts with one of these: one search of a clean text
# (nearly every line) instead of five substitutions.
_SUSPECT = re.compile(r"(?i)bearer|basic|gst_|eyJ|access_token=|client_secret=|token=|password=|[\x00-\x1f\x7f]")


def scrub(text: str) -> str:
    if _SUSPECT.search(text) is None:
        return text
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


#: True while this node sends on the head of another node's answer (api.proxying.relay).
relaying: ContextVar[bool] = ContextVar("gitstore_relaying", default=False)


class _AnsweredHere(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not relaying.get()


def log_requests_where_answered() -> None:
    """A request is logged once, by the node that answered it (idempotent). A request forwarded
    to its repository's owner is in the owner's access log, with the client's address (which the
    forwarding signature carries); the forwarding node's line would say it twice, and cost a
    fifth of what forwarding costs that node. A forward that fails is answered, and logged, here."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AnsweredHere) for f in access.filters):
        access.addFilter(_AnsweredHere())

"""Requests per credential, per worker: a runaway script slows itself down, not everyone else.

The window is counted in this process only (no shared store to run or to fail); with N workers
a caller gets up to N times the limit, which is the trade for zero coordination per request.
The local author of a server without credentials is not limited.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from api.problems import HTTPProblem
from gitstore.access.api import Principal


class RateLimiter:
    """At most `rule` (e.g. "100/second") requests per credential; an empty rule is no limit."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self._item = parse(rule) if rule else None
        self._window = SlidingWindowCounterRateLimiter(MemoryStorage())

    def check(self, key: str) -> None:
        """Count one request for `key`; raise 429 with Retry-After once its window is full."""
        if self._item is None or self._window.hit(self._item, key):
            return
        reset_at = self._window.get_window_stats(self._item, key).reset_time
        raise HTTPProblem(
            429,
            "rate-limited",
            "Too many requests",
            f"more than {self.rule} for this credential; slow down",
            headers={"Retry-After": str(max(1, math.ceil(reset_at - time.time())))},
        )


def enforce_rate_limit(request: Request, principal: Principal) -> None:
    if principal.credential_id is None and not principal.anonymous:
        return
    key = principal.credential_id or f"anonymous:{request.client.host if request.client else '-'}"
    request.app.state.rate_limiter.check(key)

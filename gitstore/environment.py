"""Numbers read from the environment (GITSTORE_*), refused with a message that names the
variable: `GITSTORE_FAILOVER_SECONDS=3s` stops the process saying so, rather than with
"could not convert string to float" from deep in an import, or an interval of -1 seconds in
a query later."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TypeVar

from gitstore.errors import BadSetting

T = TypeVar("T", int, float)

__all__ = ["seconds", "whole_number"]


def seconds(name: str, default: float, *, positive: bool = True) -> float:
    """`name` as a number of seconds (`default` when unset or empty); more than 0 if `positive`,
    else at least 0."""
    value = _read(name, float, "a number of seconds")
    if value is None:
        return default
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "above 0" if positive else "of at least 0"
        raise BadSetting(f"{name} must be a number of seconds {bound}, not {os.environ[name].strip()!r}")
    return value


def whole_number(name: str, default: int, *, minimum: int = 0) -> int:
    """`name` as a whole number of at least `minimum` (`default` when unset or empty)."""
    value = _read(name, int, "a whole number")
    if value is None:
        return default
    if value < minimum:
        raise BadSetting(f"{name} must be at least {minimum}, not {os.environ[name].strip()!r}")
    return value


def _read(name: str, kind: Callable[[str], T], what: str) -> T | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise BadSetting(f"{name} must be {what}, not {text!r}") from None

"""The access layer's public surface: scopes, a Principal's grants, and the credentials file."""

from __future__ import annotations

from gitstore.access.credentials import Credentials, default_path
from gitstore.access.scopes import (
    EVERY_REPOSITORY,
    SCOPES,
    Grants,
    Principal,
    Scope,
    narrow,
    parse_scope_string,
    scope_string,
)

__all__ = [
    "EVERY_REPOSITORY",
    "SCOPES",
    "Credentials",
    "Grants",
    "Principal",
    "Scope",
    "default_path",
    "narrow",
    "parse_scope_string",
    "scope_string",
]

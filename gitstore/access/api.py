"""The access layer's public surface: scopes, a Principal's grants, and where credentials live.

`CredentialStore` is what the service asks of credentials. Two stores keep them: the
credentials file (`Credentials`, one node) and PostgreSQL (gitstore.cluster's, every node of a
cluster at once); the record helpers below are shared by both, so a token reads the same
wherever it is kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from gitstore.access.credentials import (
    ClientInfo,
    Credentials,
    IssuedSecret,
    TokenInfo,
    check_client_id,
    default_path,
    digest,
    expiry,
    holder_record,
    is_expired,
    new_token,
    token_id,
)
from gitstore.access.credentials import Grants as WrittenGrants
from gitstore.access.scopes import (
    EVERY_REPOSITORY,
    SCOPES,
    Grants,
    Principal,
    Scope,
    narrow,
    parse_grants,
    parse_scope_string,
    scope_string,
)

__all__ = [
    "EVERY_REPOSITORY",
    "SCOPES",
    "ClientInfo",
    "CredentialStore",
    "Credentials",
    "Grants",
    "IssuedSecret",
    "Principal",
    "Scope",
    "TokenInfo",
    "WrittenGrants",
    "check_client_id",
    "default_path",
    "digest",
    "expiry",
    "holder_record",
    "is_expired",
    "narrow",
    "new_token",
    "parse_grants",
    "parse_scope_string",
    "scope_string",
    "token_id",
]


class CredentialStore(Protocol):
    """Tokens, OAuth clients and the key that signs access tokens, wherever they are kept."""

    @property
    def is_open(self) -> bool:
        """No token and no client is configured: the server trusts whoever can reach it."""
        ...

    def tokens(self) -> list[TokenInfo]: ...

    def clients(self) -> list[ClientInfo]: ...

    def authenticate_token(self, token: str) -> Principal | None: ...

    def authenticate_client(self, client_id: str, secret: str) -> Principal | None: ...

    def client_principal(self, client_id: str) -> Principal | None: ...

    def signing_key(self) -> bytes: ...

    def create_token(
        self, name: str, email: str, scopes: WrittenGrants, *, expires_in: timedelta | None = None
    ) -> IssuedSecret: ...

    def revoke_token(self, token_id: str) -> None: ...

    def add_client(self, client_id: str, name: str, email: str, scopes: WrittenGrants) -> IssuedSecret: ...

    def remove_client(self, client_id: str) -> None: ...

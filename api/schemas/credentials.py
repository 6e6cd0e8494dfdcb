"""Tokens and OAuth clients, with the scopes they grant per repository."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from api.schemas.common import FromLibrary, repo_name
from gitstore.access.api import EVERY_REPOSITORY
from gitstore.names import REPO_NAME_PATTERN

# -- credentials ---------------------------------------------------------------------------------

ScopeName = Literal["read", "preview", "write", "publish", "admin"]


def _grantee(name: str) -> str:
    return name if name == EVERY_REPOSITORY else repo_name(name)


_GRANTEE_PATTERN = r"^(?:\*$|" + REPO_NAME_PATTERN[1:] + ")"
Grantee = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_grantee)]
Grants = Annotated[
    dict[Grantee, Annotated[list[ScopeName], Field(min_length=1)]],
    Field(min_length=1),
    # pydantic would state the name rule as patternProperties, which lets any other name through.
    WithJsonSchema(
        {
            "type": "object",
            "description": 'repository name (or "*" for all) -> a non-empty list of scopes',
            "minProperties": 1,
            "propertyNames": {"pattern": _GRANTEE_PATTERN, "maxLength": 64},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": list(get_args(ScopeName))},
            },
            "examples": [{"demo": ["write"]}],
        }
    ),
]


# A token's or client's person becomes a git author line (gitstore.access.credentials).
_AUTHOR_LINE = r"^[^<>\n\r\x00]*$"
HolderName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=_AUTHOR_LINE, description="becomes the git author name")
]
HolderEmail = Annotated[
    str, Field(min_length=3, max_length=200, pattern=_AUTHOR_LINE, description="becomes the git author email")
]


class TokenCreate(BaseModel):
    """A token to issue: whose it is (the git author of its commits), its scopes and lifetime."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: HolderName
    email: HolderEmail
    scopes: Grants
    # A century at most: far beyond that the expiry is past what a datetime can hold (was a 500).
    expires_in_seconds: int | None = Field(default=None, ge=60, le=100 * 365 * 24 * 3600)


class TokenCreated(BaseModel):
    """A new token: its id, and its secret, shown this once."""

    id: str
    token: str = Field(description="shown once; send as Authorization: Bearer <token>")


class TokenOut(FromLibrary):
    """A token as the credentials file keeps it (never its secret)."""

    id: str
    name: str
    email: str
    scopes: dict[str, list[str]]
    created_at: str
    expires_at: str | None


class TokenList(BaseModel):
    """Every token."""

    items: list[TokenOut]


class ClientCreate(BaseModel):
    """An OAuth client to register: its id, whose it is, and its scopes."""

    model_config = ConfigDict(extra="forbid", strict=True)
    client_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    name: HolderName
    email: HolderEmail
    scopes: Grants


class ClientCreated(BaseModel):
    """A new OAuth client: its id, and its secret, shown this once."""

    client_id: str
    client_secret: str = Field(description="shown once")


class ClientOut(FromLibrary):
    """An OAuth client (never its secret)."""

    client_id: str
    name: str
    email: str
    scopes: dict[str, list[str]]
    created_at: str


class ClientList(BaseModel):
    """Every OAuth client."""

    items: list[ClientOut]

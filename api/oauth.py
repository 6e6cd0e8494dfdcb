"""OAuth 2.0 client credentials (RFC 6749 section 4.4): authoring tools trade a client id and
secret for a short-lived signed access token carrying the client's scopes (or fewer).

Access tokens are JWTs signed with HS256 by the service's own key (the credentials file holds
it), checked for signature, issuer, audience and expiry, and refused once their client is
removed: a short lifetime bounds what a leaked token can do, removal ends it at once.
Errors are problem+json bodies that also carry RFC 6749's `error` member, so both kinds of
client understand them.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from typing import Annotated
from urllib.parse import parse_qsl

import jwt
import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.body import read_body
from api.problems import HTTPProblem
from gitstore.access.api import CredentialStore, Principal, narrow, parse_scope_string, scope_string
from gitstore.errors import InvalidInput

router = APIRouter(tags=["auth"])

ISSUER = AUDIENCE = "gitstore"
_ALGORITHM = "HS256"


# NumericDate up to the last second of year 9999: a date past that is no date we issued.
_LAST_DATE = 253402300799
_Date = Annotated[int, Field(ge=0, le=_LAST_DATE)]


class _Claims(BaseModel):
    """The claims of a token we issue, by type. PyJWT takes `exp: "9999999999"`, `exp: 1e30` and
    `nbf: false` for numbers and never looks at `scope`, so a token signed with our key but
    holding claims we never write would be honoured, or fail with a 500 halfway through. Strict,
    because we only ever write integers and strings."""

    model_config = ConfigDict(strict=True, extra="ignore")

    iss: str
    aud: str | list[str]  # RFC 7519 allows a list; PyJWT checked that it names us
    sub: str
    iat: _Date
    exp: _Date
    nbf: _Date | None = None
    jti: str | None = None
    scope: str


def verify_access_token(credentials: CredentialStore, token: str) -> Principal | None:
    """The principal an access token stands for, or None if it is not one we issued and honour."""
    try:
        claims = _Claims.model_validate(
            jwt.decode(
                token,
                credentials.signing_key(),
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "scope"]},
            )
        )
        client = credentials.client_principal(claims.sub)
        if client is None:
            return None
        granted = narrow(client.grants, parse_scope_string(claims.scope))
    except (jwt.PyJWTError, ValidationError, InvalidInput):
        return None
    if not granted:
        return None  # it claims only scopes its client does not hold: not one we issued
    return Principal(client.name, client.email, granted, client.credential_id)


@router.post(
    "/oauth/token",
    summary="Trade client credentials for a short-lived access token",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "scope": {"type": "string", "description": "space-separated repo:scope items"},
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise _oauth_error(400, "invalid_request", "send the form as application/x-www-form-urlencoded")
    form = dict(parse_qsl((await read_body(request)).decode("utf-8", "replace"), keep_blank_values=True))
    if form.get("grant_type") != "client_credentials":
        raise _oauth_error(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
    client_id, secret = _client_credentials(authorization, form)
    credentials: CredentialStore = request.app.state.credentials
    client = credentials.authenticate_client(client_id, secret)
    if client is None:
        raise _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    granted = dict(client.grants)
    if "scope" in form:
        try:
            granted = narrow(client.grants, parse_scope_string(form["scope"]))
        except InvalidInput as exc:
            raise _oauth_error(400, "invalid_scope", exc.detail) from None
        if not granted:
            raise _oauth_error(400, "invalid_scope", "none of the scopes asked for is granted to this client")
    lifetime = request.app.state.settings.access_token_seconds
    now = int(time.time())
    scope = scope_string(granted)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client_id,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(8),
        "scope": scope,
    }
    access_token = jwt.encode(claims, credentials.signing_key(), algorithm=_ALGORITHM)
    return Response(
        orjson.dumps({"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    if authorization and authorization.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _oauth_error(401, "invalid_client", "malformed Basic credentials") from None
        return client_id, secret
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    raise _oauth_error(401, "invalid_client", "send client_id and client_secret, in the form or as Basic auth")


def _oauth_error(status: int, error: str, detail: str) -> HTTPProblem:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="gitstore"'
    return HTTPProblem(
        status, f"oauth-{error.replace('_', '-')}", "OAuth request refused", detail, error=error, headers=headers
    )

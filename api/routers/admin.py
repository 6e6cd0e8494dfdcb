"""/admin: tokens and OAuth clients, for callers with `admin` on every repository.

A new secret is in the creation answer and nowhere else; the credentials file keeps its digest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.auth import require_everywhere
from api.body import JsonBody, json_body, validate_body
from api.schemas import ClientCreate, ClientCreated, ClientList, TokenCreate, TokenCreated, TokenList
from gitstore.access.api import CredentialStore, Principal

router = APIRouter(prefix="/admin", tags=["admin"])

AdminEverywhere = Annotated[Principal, Depends(require_everywhere("admin"))]


def _credentials(request: Request) -> CredentialStore:
    return request.app.state.credentials  # type: ignore[no-any-return]


CredentialsDep = Annotated[CredentialStore, Depends(_credentials)]


@router.get("/tokens", response_model=TokenList, summary="Every token (never its secret)")
def list_tokens(_: AdminEverywhere, credentials: CredentialsDep) -> TokenList:
    return TokenList.model_validate({"items": credentials.tokens()}, from_attributes=True)


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Issue a token; its secret is shown once",
    openapi_extra=json_body(TokenCreate),
)
def create_token(_: AdminEverywhere, credentials: CredentialsDep, body: JsonBody, response: Response) -> TokenCreated:
    request = validate_body(TokenCreate, body)
    lifetime = timedelta(seconds=request.expires_in_seconds) if request.expires_in_seconds else None
    issued = credentials.create_token(request.name, request.email, request.scopes, expires_in=lifetime)
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(id=issued.id, token=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token at once, in every worker")
def revoke_token(_: AdminEverywhere, credentials: CredentialsDep, token_id: str) -> Response:
    credentials.revoke_token(token_id)
    return Response(status_code=204)


@router.get("/clients", response_model=ClientList, summary="OAuth clients (never their secrets)")
def list_clients(_: AdminEverywhere, credentials: CredentialsDep) -> ClientList:
    return ClientList.model_validate({"items": credentials.clients()}, from_attributes=True)


@router.post(
    "/clients",
    response_model=ClientCreated,
    status_code=201,
    summary="Register an OAuth client",
    openapi_extra=json_body(ClientCreate),
)
def create_client(_: AdminEverywhere, credentials: CredentialsDep, body: JsonBody, response: Response) -> ClientCreated:
    request = validate_body(ClientCreate, body)
    issued = credentials.add_client(request.client_id, request.name, request.email, request.scopes)
    response.headers["Cache-Control"] = "no-store"
    return ClientCreated(client_id=issued.id, client_secret=issued.secret)


@router.delete("/clients/{client_id}", status_code=204, summary="Remove a client; its access tokens stop working")
def remove_client(_: AdminEverywhere, credentials: CredentialsDep, client_id: str) -> Response:
    credentials.remove_client(client_id)
    return Response(status_code=204)

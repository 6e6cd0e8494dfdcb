"""What the OpenAPI document says about failures: any operation may answer a 4xx problem
(RFC 9457, `application/problem+json`), 503 when busy and 507 when the disk is full. Declared
once for the whole app, so clients and schemathesis know an error body's shape everywhere.
`install` adds what FastAPI cannot infer: how to authenticate, and each problem type."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api.problems import MEDIA_TYPE, PROBLEMS
from gitstore.names import KEY_PATTERN

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:gitstore:problem:<kind>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each invalid part of the request: where (loc) and what is wrong (msg)",
            "items": {"type": "object"},
        },
        "current_etag": {"type": ["string", "null"], "description": "precondition-failed: the draft's ETag now"},
        "conflicts": {
            "type": "array",
            "description": "merge-conflict: each overlapping change, {path, base, ours, theirs}",
            "items": {"type": "object"},
        },
        "holder": {"type": ["string", "null"], "description": "base-path-taken, translation-taken: who has it"},
        "base_path": {"type": ["string", "null"], "description": "base-path-taken: the path"},
        "content_id": {"type": ["string", "null"], "description": "translation-taken: the document"},
        "locale": {"type": ["string", "null"], "description": "translation-taken: the locale"},
        "explanation": {"type": ["string", "null"], "description": "unpublished: why it was taken down"},
        "alternative_path": {"type": ["string", "null"], "description": "unpublished, redirected: where to go"},
        "entities": {
            "type": "array",
            "description": "corrupt-object: the entities the damaged object belongs to",
            "items": {"type": "string"},
        },
        "key": {"type": "string", "description": "the entity the problem is about"},
        "name": {"type": "string", "description": "the repository, type or link type the problem is about"},
        "limit": {"type": "integer", "description": "payload-too-large: the limit in bytes"},
        "accepted": {
            "type": "array",
            "description": "unsupported-media-type, not-acceptable: the media types the route takes or serves",
            "items": {"type": "string"},
        },
        "required_scope": {"type": "string", "description": "forbidden: the scope the route needs"},
    },
}

# Problems raised at the HTTP level (api/), beside those of gitstore's errors (PROBLEMS).
_HTTP_PROBLEMS = {
    "invalid-request": (422, "a parameter is not valid: errors"),
    "malformed-json": (400, "the body is not JSON gitstore accepts (no NaN, duplicate keys, lone surrogates)"),
    "malformed-precondition": (400, "If-Match or If-None-Match is not an entity-tag list gitstore takes"),
    "unsupported-media-type": (415, "the body's Content-Type: accepted"),
    "not-acceptable": (406, "no media type in Accept is one the route serves: accepted"),
    "payload-too-large": (413, "the body is over the limit: limit"),
    "request-timeout": (408, "the body did not arrive in time; the connection is closed"),
    "malformed-request": (400, "the request itself is not one gitstore can read"),
    "unauthenticated": (401, "no token, or a bad one; WWW-Authenticate says how"),
    "loopback-only": (403, "no credentials exist yet, so only loopback callers are served"),
    "dumb-http-refused": (403, "git's dumb HTTP protocol is not served"),
    "push-refused": (403, "git push is not served; write over REST"),
    "forbidden": (403, "the token lacks a scope on this repository: required_scope"),
    "rate-limited": (429, "too many requests; Retry-After says when to try again"),
    "method-not-allowed": (405, "Allow names the methods the path takes"),
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}


# Within 4XX already; named where a parameter or body can be refused, so clients expect it there.
_INVALID = _problem(
    "A parameter or the body breaks a rule (invalid-request, invalid-input, invalid-name, ...): "
    "errors says where; nothing was written"
)

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": _problem("The request cannot be carried out as sent; nothing was written"),
    503: _problem(
        "Busy (a lock stayed held), or in a cluster the repository's node or the control plane is"
        " not answering or this node no longer owns it; nothing was written, retry after Retry-After"
    ),
    507: _problem("The disk is full; nothing was written"),
}


# OpenAPI links: what an answer lets a client (and schemathesis' state machine) do next, with the
# values it needs. A written entity's ETag is the If-Match of the next write to it.
_SAME_ENTITY = {"path.repo": "$request.path.repo", "path.key": "$response.body#/key"}
_WITH_ETAG = _SAME_ENTITY | {"header.If-Match": "$response.header.ETag"}
_AFTER_A_WRITE = {
    "ReadTheDraft": ("get_entity", _SAME_ENTITY | {"query.state": "draft"}),
    "PatchWithTheETag": ("patch_entity", _WITH_ETAG),
    "PublishWithTheETag": ("publish_entity", _WITH_ETAG),
    "DeleteWithTheETag": ("delete_entity", _WITH_ETAG),
    "ListItsVersions": ("list_versions", _SAME_ENTITY),
}
_NEW_REPOSITORY = {"path.repo": "$response.body#/name"}
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("create_repo", "201"): {
        "PutAnEntityInIt": ("put_entity", _NEW_REPOSITORY),
        "ReadIt": ("get_repo", _NEW_REPOSITORY),
        "ListItsDrafts": ("list_entities", _NEW_REPOSITORY | {"query.state": "draft"}),
    },
    ("put_entity", "200"): _AFTER_A_WRITE,
    ("put_entity", "201"): _AFTER_A_WRITE,
    ("patch_entity", "200"): _AFTER_A_WRITE,
    ("restore_version", "200"): _AFTER_A_WRITE,
    ("discard_draft", "200"): _AFTER_A_WRITE,
    ("delete_entity", "200"): {"PublishTheDelete": ("publish_entity", _WITH_ETAG)},
    ("publish_entity", "200"): {
        "ReadItLive": ("get_entity", {"path.repo": "$request.path.repo", "path.key": "$request.path.key"}),
        "UnpublishIt": ("unpublish_entity", {"path.repo": "$request.path.repo", "path.key": "$request.path.key"}),
    },
    # Only ever a token this answer created: the caller's own stays out of reach.
    ("create_token", "201"): {"RevokeIt": ("revoke_token", {"path.token_id": "$response.body#/id"})},
    ("create_client", "201"): {"RemoveIt": ("remove_client", {"path.client_id": "$response.body#/client_id"})},
}


def install(app: FastAPI) -> None:
    """The app's document, with its security scheme, problem types and readable operation ids."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            _describe(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def operation_id(route: APIRoute) -> str:
    """The endpoint's own name (`get_entity`, `publish_entity`): unique, and what a generated
    client's method is called."""
    return route.name


def _describe(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "a token from `gitstore token create`, /admin/tokens or /oauth/token",
    }
    # Anonymous reading may be on (GITSTORE_ANONYMOUS): a token is optional everywhere.
    document["security"] = [{"bearer": []}, {}]
    kinds = {kind: (status, title) for status, kind, title in PROBLEMS.values()}
    kinds.update(_HTTP_PROBLEMS)
    rows = "\n".join(f"| `{kind}` | {status} | {what} |" for kind, (status, what) in sorted(kinds.items()))
    schema = components.setdefault("schemas", {})
    schema["Problem"] = PROBLEM_SCHEMA | {
        "description": "An RFC 9457 problem. `type` is `urn:gitstore:problem:<kind>`, one of:\n\n"
        "| kind | status | what, and its extra fields |\n| --- | --- | --- |\n" + rows,
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.setdefault("description", operation.get("summary", ""))
            for parameter in operation.get("parameters", []):
                _not_null(parameter)
                if parameter["in"] == "path" and parameter["name"] == "key":
                    # Enforced by gitstore.names (422 invalid-name), which this pattern restates.
                    parameter["schema"] |= {"pattern": KEY_PATTERN, "description": "entity key"}
            if operation.get("parameters") or operation.get("requestBody"):
                operation["responses"].setdefault("422", _INVALID)
            for body in operation.get("requestBody", {}).get("content", {}).values():
                _hoist_definitions(body, schema)
            for status, response in operation["responses"].items():
                for name, (target, parameters) in LINKS.get((operation["operationId"], status), {}).items():
                    link = {"operationId": target, "parameters": parameters}
                    response.setdefault("links", {})[name] = link


def _not_null(parameter: dict[str, Any]) -> None:
    """An optional parameter is absent or a string on the wire, never JSON null: FastAPI's
    `str | None` says `anyOf [string, null]`, which clients send as the text "null"."""
    schema = parameter["schema"]
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        del schema["anyOf"]
        parameter["schema"] = branches[0] | schema


def _hoist_definitions(body: dict[str, Any], components: dict[str, Any]) -> None:
    """A body declared from a model (api.body.json_body) carries its nested models in `$defs`,
    where `#/$defs/...` cannot reach them from inside the document: move them to the components."""
    definitions = body.get("schema", {}).pop("$defs", {})
    for name, definition in definitions.items():
        if components.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are called {name}")
    if definitions:
        body["schema"] = _rewrite_refs(body["schema"])


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rewrite_refs(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node

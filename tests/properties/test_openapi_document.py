"""The OpenAPI document itself: valid OpenAPI (checked by openapi-spec-validator), and saying
what a client generator and /docs need: how to authenticate, every body, readable operation
ids, every success status, and each problem type a failure may carry."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from api.main import create_app
from api.problems import PROBLEMS
from api.settings import Settings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, o) for p, ops in document["paths"].items() for m, o in ops.items()]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_docs_can_authorise_with_a_bearer_token(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert {"bearer": []} in document["security"]


def test_every_operation_has_a_readable_id_and_a_description(document: dict[str, Any]) -> None:
    ids = [o["operationId"] for _, _, o in _operations(document)]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and "__" not in i for i in ids), ids
    assert all(o.get("description") for _, _, o in _operations(document))
    by_id = {o["operationId"]: o for _, _, o in _operations(document)}
    assert {"get_entity", "put_entity", "publish_entity", "list_entities"} <= set(by_id)


@pytest.mark.parametrize(
    ("operation", "required"),
    [
        ("restore_version", True),
        ("unpublish_entity", True),
        ("publish_many", True),
        ("put_link_type", True),
        ("publish_entity", False),
        ("discard_draft", False),
    ],
)
def test_every_body_an_operation_reads_is_declared(document: dict[str, Any], operation: str, required: bool) -> None:
    found = {o["operationId"]: o for _, _, o in _operations(document)}[operation]
    body = found["requestBody"]
    assert body["required"] is required
    assert body["content"]["application/json"]["schema"]["type"] == "object"


def test_a_creating_put_declares_its_201(document: dict[str, Any]) -> None:
    put = document["paths"]["/repos/{repo}/entities/{key}"]["put"]
    assert {"200", "201"} <= set(put["responses"])


def test_the_repository_name_rule_is_in_the_schema(document: dict[str, Any]) -> None:
    params = document["paths"]["/repos/{repo}/entities"]["get"]["parameters"]
    repo = next(p for p in params if p["name"] == "repo")
    assert repo["schema"]["pattern"].startswith("^") and "{0,63}" in repo["schema"]["pattern"]


def test_every_problem_type_is_documented_with_its_extra_fields(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    for _, kind, _ in PROBLEMS.values():
        assert f"| `{kind}` |" in problem["description"], kind
    for kind in ("not-acceptable", "malformed-precondition", "unsupported-media-type", "invalid-request"):
        assert f"| `{kind}` |" in problem["description"], kind
    assert {"current_etag", "conflicts", "holder", "errors", "entities", "accepted"} <= set(problem["properties"])


def test_every_reference_resolves_inside_the_document(document: dict[str, Any]) -> None:
    # A body declared from a model used to carry `#/$defs/...` references nothing could resolve,
    # so schemathesis skipped the entity body's members.
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    found = refs(document)
    assert found and all(r.startswith("#/components/schemas/") for r in found), sorted(set(found))
    assert {r.rsplit("/", 1)[1] for r in found} <= set(document["components"]["schemas"])


def test_422_is_listed_wherever_a_parameter_or_body_can_be_refused(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in operation["responses"], (method, path)
    assert "422" not in document["paths"]["/health"]["get"]["responses"]


@pytest.mark.parametrize("operation", ["publish_entity", "unpublish_entity", "republish_entity"])
def test_routes_that_move_live_content_declare_only_if_match(document: dict[str, Any], operation: str) -> None:
    # They refuse If-None-Match (422), so declaring it invited schema-valid requests they refuse.
    found = {o["operationId"]: o for _, _, o in _operations(document)}[operation]
    headers = {p["name"].lower(): p for p in found["parameters"] if p["in"] == "header"}
    assert set(headers) == {"if-match"}
    assert headers["if-match"]["schema"]["pattern"]


def test_links_lead_from_a_write_to_the_next_with_its_etag(document: dict[str, Any]) -> None:
    put = document["paths"]["/repos/{repo}/entities/{key}"]["put"]["responses"]
    for status in ("200", "201"):
        patch = put[status]["links"]["PatchWithTheETag"]
        assert patch["operationId"] == "patch_entity"
        assert patch["parameters"]["header.If-Match"] == "$response.header.ETag"
    created = document["paths"]["/admin/tokens"]["post"]["responses"]["201"]["links"]
    assert created["RevokeIt"]["parameters"] == {"path.token_id": "$response.body#/id"}
    # Nothing links the token list to a revocation: only a token just created is revoked.
    listed = document["paths"]["/admin/tokens"]["get"]["responses"]["200"]
    assert "links" not in listed


def test_every_schema_in_the_components_says_what_it_is(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    undescribed = sorted(name for name, schema in schemas.items() if not schema.get("description", "").strip())
    assert not undescribed, f"give these models a docstring: {undescribed}"


def test_no_parameter_is_declared_nullable(document: dict[str, Any]) -> None:
    # A client told a header may be null sends `If-Match: null`, which is then refused.
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            branches = parameter["schema"].get("anyOf", [])
            assert {"type": "null"} not in branches, (method, path, parameter["name"])
    put = document["paths"]["/repos/{repo}/entities/{key}"]["put"]
    if_match = next(p for p in put["parameters"] if p["name"] == "if-match")
    assert if_match["schema"]["type"] == "string" and if_match["schema"]["pattern"]

"""Schemathesis' state machine against the app in process: sequences that follow the document's
links (create a repository, PUT an entity, PATCH and publish it with the ETag the PUT answered,
read it, delete it; issue a token and revoke it), each answer held to the same checks as the
stateless run (tests/properties/test_openapi.py).

The run authenticates with a token of its own, as a deployed service would be called. The
routes that revoke credentials run only on throwaway ones: the links lead from a token's
creation to its revocation, and a revocation of the run's own token that any other path (an
inferred link from the token list) reaches is pointed at a throwaway token instead, so the run
can never lock itself out.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import Phase, settings

from api.main import create_app
from api.settings import Settings
from gitstore.access.credentials import Credentials, default_path
from tests.properties.test_openapi import CHECKS, DOCUMENT, SAMPLE_VALUES

_REVOKE_TOKEN = "DELETE /admin/tokens/{token_id}"
# A sequence makes answers that depend on what came before, not on the request's shape: an ETag
# a later write made stale (412), content a step unpublished (410). Schema-valid requests
# answered so are not refused input.
_CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    SAMPLE_VALUES
    | {"checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", "3XX", 401, 403, 404, 409, 410, 412, 429]}}}
)

# Parameters that exclude one another, which OpenAPI cannot say (each documented, and answered
# 400 or 422 when combined): of a generated combination only the first is sent.
_EXCLUSIVE = {
    "headers": {"if-match": ("if-none-match",)},
    "query": {"as_of": ("state", "version", "commit", "type", "locale", "has_unpublished_changes"), "path": ("field",)},
}


def _drop_exclusive_parameters(case: schemathesis.Case) -> None:
    for container, rules in _EXCLUSIVE.items():
        values = getattr(case, container)
        if not values:
            continue
        for first, others in rules.items():
            if any(name.lower() == first for name in values):
                values = {name: v for name, v in values.items() if name.lower() not in others}
        setattr(case, container, values)


def _whole_numbers_as_integers(value: Any) -> Any:
    """JSON Schema's numbers have no 2.0 apart from 2, so `integer` admits it; gitstore's strict
    parsing wants a count written as one (api.body), as most JSON encoders write it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_integers(v) for v in value]
    return value


def test_sequences_of_operations_answer_within_the_schema(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    credentials = Credentials(default_path(data_dir))
    own = credentials.create_token("schemathesis", "st@example.org", {"*": ["admin"]})
    app = create_app(Settings(data_dir=data_dir, load_samples=True, max_body_bytes=64 * 1024, rate_limit=""))
    schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=_CONFIG)
    seen: list[tuple[str, int]] = []

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"app": app, "headers": {"Authorization": f"Bearer {own.secret}"}}

        def before_call(self, case: schemathesis.Case) -> None:
            if case.meta is not None and case.meta.generation.mode.is_positive:
                _drop_exclusive_parameters(case)
                case.body = _whole_numbers_as_integers(case.body)
            if case.operation.label == _REVOKE_TOKEN and case.path_parameters.get("token_id") == own.id:
                throwaway = credentials.create_token("throwaway", "t@example.org", {"*": ["read"]})
                case.path_parameters["token_id"] = throwaway.id

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            seen.append((case.operation.label, response.status_code))

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            super().validate_response(response, case, additional_checks=CHECKS, **kwargs)

    Sequences.run(
        settings=settings(
            settings.default,
            # A sequence's later draws depend on what the app answered, so a replay to shrink
            # one is not the same test case: report it as found.
            phases=[Phase.generate],
            max_examples=settings.default.max_examples // 5,
            stateful_step_count=8,
        )
    )
    assert credentials.authenticate_token(own.secret) is not None, "the run revoked its own token"
    assert seen, "no sequence ran"

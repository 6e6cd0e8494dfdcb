"""Schemathesis' state machine against the app in process: sequences that follow the document's
links (create a repository, PUT an entity, PATCH, publish or delete it with the ETag the write
answered, read it; issue a token and revoke it; register an OAuth client and remove it).

Every answer is held to the stateless run's checks (tests/properties/test_openapi.py) but one:
positive_data_acceptance. Sequences reach rules the document does not state yet (parameters that
exclude one another, integers past 64 bits, a manifest naming a member an earlier step deleted,
the entity document's rules); each such refusal is a 4xx problem, and `make fuzz` with that
check on in the stateless run lists them.

The run authenticates with a token of its own, as a deployed service is called. Revocations run
only on throwaway tokens: the links lead from a token's creation to its revocation, and a
revocation of the run's own token that another path reaches (an inferred link from the token
list) is pointed at a throwaway token instead, so the run can never lock itself out.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import Phase, settings
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.main import create_app
from api.settings import Settings
from gitstore.access.credentials import Credentials, default_path
from tests.properties.test_openapi import _SAMPLES, CHECKS, DOCUMENT

_REVOKE_TOKEN = "DELETE /admin/tokens/{token_id}"
_STATEFUL_CHECKS = [check for check in CHECKS if check is not positive_data_acceptance]


def _negative_somewhere(case: schemathesis.Case) -> bool:
    """A case labelled negative may carry no negative part: its negative body was an optional
    one left out (schemathesis then names the invalid component "positive test case"). It is a
    valid request, and its acceptance no finding."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return True
    for location in ParameterLocation:
        sent = case.get_container(location)
        if meta.is_negative_at(location) and not isinstance(sent, NotSet) and sent not in (None, {}):
            return True
    return False


def test_sequences_of_operations_answer_within_the_schema(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    credentials = Credentials(default_path(data_dir))
    own = credentials.create_token("schemathesis", "st@example.org", {"*": ["admin"]})
    app = create_app(Settings(data_dir=data_dir, load_samples=True, max_body_bytes=64 * 1024, rate_limit=""))
    schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=_SAMPLES)
    revoked: list[str] = []

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"app": app, "headers": {"Authorization": f"Bearer {own.secret}"}}

        def before_call(self, case: schemathesis.Case) -> None:
            if case.operation.label == _REVOKE_TOKEN and case.path_parameters.get("token_id") == own.id:
                throwaway = credentials.create_token("throwaway", "t@example.org", {"*": ["read"]})
                case.path_parameters["token_id"] = throwaway.id

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            if case.operation.label == _REVOKE_TOKEN and response.status_code == 204:
                revoked.append(case.path_parameters["token_id"])

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(
                response,
                checks=_STATEFUL_CHECKS,
                excluded_checks=[] if _negative_somewhere(case) else [negative_data_rejection],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Sequences.run(
        settings=settings(
            settings.default,
            # A sequence's later draws depend on what the app answered (commit ids, ETags), so a
            # replay to shrink one is not the same test case: report it as found.
            phases=[Phase.generate],
            database=None,
            max_examples=settings.default.max_examples // 5,
            stateful_step_count=8,
        )
    )
    assert own.id not in revoked
    assert credentials.authenticate_token(own.secret) is not None, "the run revoked its own token"

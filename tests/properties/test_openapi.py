"""Schemathesis against the app's own OpenAPI document, in process.

The property: whatever a client sends that the schema can describe (and much it cannot, in
schemathesis' negative cases), the answer is never a 5xx, and its status code, content type and
body are ones the operation declares. Not checked: that every schema-invalid request is refused
(FastAPI's lax parsing takes `as_of=0` as a Unix time) or every schema-valid one accepted (keys
and pins have rules no JSON Schema says).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from api.main import create_app
from api.settings import Settings

# Most generated names would only ever meet a 404; these reach the sample content instead.
SAMPLE_VALUES = {
    "dictionaries": {
        "repos": {"values": ["demo-course", "gov-pages"]},
        "keys": {"values": ["intro-to-python", "variables", "hello-world-text", "vehicle-tax", "dvla", "tax-disc"]},
    },
    "parameters": {
        "path.repo": {"dictionary": "repos", "probability": 0.8},
        "path.key": {"dictionary": "keys", "probability": 0.6},
        # A long-poll of the event feed may wait up to five minutes for nothing.
        "query.wait": 0,
    },
}
_SAMPLES = schemathesis.config.SchemathesisConfig.from_dict(SAMPLE_VALUES)
# The document only: building an app touches no disk until its lifespan starts.
DOCUMENT = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_SAMPLES)

# Binary bodies (archives, NDJSON streams) go as the raw bytes schemathesis generates for them.
for operations in DOCUMENT["paths"].values():
    for operation in operations.values():
        for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
            if body.get("schema", {}).get("format") == "binary":
                schemathesis.serializer.alias(media_type, "application/octet-stream")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
    unsupported_method,
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    data_dir: Path = tmp_path_factory.mktemp("openapi") / "data"
    return create_app(Settings(data_dir=data_dir, load_samples=True, max_body_bytes=64 * 1024, rate_limit=""))


@schema.parametrize()
# Each example is a request against git on disk: a fifth of the profile's examples per operation.
@settings(max_examples=settings.default.max_examples // 5)
def test_every_operation_answers_within_its_schema(app: FastAPI, case: schemathesis.Case) -> None:
    case.call_and_validate(app=app, checks=CHECKS)

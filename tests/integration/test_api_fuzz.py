"""Schema-driven fuzzing with every schemathesis check: requests generated from the API's own
OpenAPI document never get a 5xx, the answers match the document, requests it calls valid are
accepted and the ones it calls invalid are refused."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr, ValidationError
from schemathesis.config import SchemathesisConfig

from app.serving.app import create_app
from app.serving.routes.predict import MAX_EXPLAINED, as_boolean
from tests.helpers import champion_of, isolated

pytestmark = pytest.mark.integration
EXAMPLES_PER_ROUTE = 60
# An upload's bytes are judged by the API, which a schema cannot describe ("a PNG or a JPEG"):
# random bytes are refused with the documented 422, the one answer the positive check allows
# beyond the defaults, and only there.
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path": "/predict/image",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422"]
                    }
                },
            }
        ]
    }
)


def within_the_explain_limit(case) -> bool:
    """False for a request asking to explain more digits than a request may: the document says
    that limit in words (`explain`), which no schema can tie to the body's length, and the API
    refuses such a request with its 422 (tests/test_api.py checks that answer)."""
    instances = case.body.get("instances") if isinstance(case.body, dict) else None
    try:  # read as the API reads it (pydantic's booleans)
        explain = as_boolean.validate_python(str((case.query or {}).get("explain", "")))
    except ValidationError:
        explain = False  # not a boolean: the API's 422 for that is in the document
    return not (explain and isinstance(instances, list) and len(instances) > MAX_EXPLAINED)


@pytest.fixture(scope="module")
def api_schema(server, params):
    """The OpenAPI schema of an API that serves a real champion (so /predict really predicts)."""
    served = isolated(server).model_copy(update={"admin_token": SecretStr("fuzz")})
    champion_of(served, params)
    app = create_app(served)
    with TestClient(app):  # runs the lifespan: the model is loaded before fuzzing starts
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


def test_no_generated_request_gets_a_server_error(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /predict", "POST /predict/image"}
    for operation in operations:

        @given(case=operation.as_strategy().filter(within_the_explain_limit))
        @settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_server_error(case):
            case.call_and_validate()  # every check

        no_server_error()

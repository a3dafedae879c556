"""Property-based fuzzing of the internships API from its own OpenAPI document.

Schemathesis generates valid and invalid requests for every operation and
sends them through the WSGI app as several callers. Every response must be
below 500, and every 4xx must be a problem+json body. The run is
derandomised and bounded, so it sends the same cases on every run.

NOTE: schemathesis 4.32.5's pytest loader (``schemathesis.pytest.from_fixture``)
fails on pytest 9, so each operation's strategy runs under a plain Hypothesis
``@given`` here, as in the students service's fuzz test.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.internships.helpers import PROBLEM_JSON

OPENAPI_PATH = "/api/v1/internships/openapi.json"
EXAMPLES_PER_MODE = 10
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_MODE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(params=["system_admin", "student", "anonymous"], ids=str)
def fuzz_headers(request, world) -> dict[str, str]:
    """Headers of one caller, in a world with an employer, an opportunity, a student."""
    if request.param == "anonymous":
        return {}
    return getattr(world, request.param).headers


def _check_response(case, response) -> None:
    described = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{described}: {response.text[:500]}"
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_JSON), f"{described}: {content_type}"
    body = json.loads(response.text)
    assert body["status"] == response.status_code, described


def _fuzz_operation(operation, mode, headers) -> None:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        _check_response(case, case.call(headers=headers))

    run()


def test_api_has_no_server_errors(internships_app, fuzz_headers):
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, internships_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, fuzz_headers)
            except AssertionError as error:
                failures.append(f"{operation.label} ({mode.value}): {error}")

    assert not failures, "\n".join(failures)

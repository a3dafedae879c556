"""Property-based fuzzing of the students API from its own OpenAPI document.

Schemathesis generates valid and invalid requests for every operation and
sends them, as a system admin and as a student, through the WSGI app. Every
response must be below 500, and every 4xx must be a problem+json body. The
run is derandomised and bounded, so it sends the same cases on every run.

NOTE: schemathesis 4.32.5's pytest loader (``schemathesis.pytest.from_fixture``)
fails on pytest 9 (it sets ``Node._nodeid``), so each operation's strategy
runs under a plain Hypothesis ``@given`` here.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from edulink.auth import Role
from tests.students.helpers import PROBLEM_JSON, create_institution, create_profile

OPENAPI_PATH = "/api/v1/students/openapi.json"
EXAMPLES_PER_MODE = 20
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_MODE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(params=[Role.system_admin, Role.student], ids=str)
def fuzz_caller(request, client, person):
    """A caller with some data to find: an institution, and a student's profile."""
    system_admin = person(Role.system_admin)
    create_institution(client, system_admin, "Fuzz University", domains=("fuzz.ac.ke",))
    if request.param == Role.system_admin:
        return system_admin
    student = person(Role.student, email="fuzzer@fuzz.ac.ke")
    create_profile(client, student, "Fuzzer")
    return student


def _check_response(case, response) -> None:
    described = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{described}: {response.text[:500]}"
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_JSON), f"{described}: {content_type}"
    body = json.loads(response.text)
    assert body["status"] == response.status_code, described
    assert "Traceback" not in response.text, described


def _fuzz_operation(operation, mode, headers) -> None:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        _check_response(case, case.call(headers=headers))

    run()


def test_api_has_no_server_errors(students_app, fuzz_caller):
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, students_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz_operation(operation, mode, fuzz_caller.headers)
            except AssertionError as error:
                failures.append(f"{operation.label} ({mode.value}): {error}")

    assert not failures, "\n".join(failures)

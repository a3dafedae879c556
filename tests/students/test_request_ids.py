"""X-Request-ID: echoed when well formed, generated otherwise, quoted in problems."""

from __future__ import annotations

import re

import pytest

from edulink.auth import Role

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def admin_headers(person):
    return person(Role.system_admin).headers


@pytest.mark.parametrize(
    "request_id",
    [
        "abc-123",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "gateway:edge.7_2",
        "x" * 128,
    ],
)
def test_well_formed_id_is_echoed(client, admin_headers, request_id):
    response = client.get(
        "/api/v1/students", headers={**admin_headers, "X-Request-ID": request_id}
    )

    assert response.headers["X-Request-ID"] == request_id


def test_missing_id_is_generated(client, admin_headers):
    response = client.get("/api/v1/students", headers=admin_headers)

    assert GENERATED.match(response.headers["X-Request-ID"])


def test_generated_ids_differ(client, admin_headers):
    first = client.get("/api/v1/students", headers=admin_headers)
    second = client.get("/api/v1/students", headers=admin_headers)

    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "request_id",
    [
        "",
        "has space",
        "x" * 129,
        "semi;colon",
        'quote"d',
        "<script>alert(1)</script>",
        "line\tbreak",
        "ünïcode",
    ],
)
def test_malformed_id_is_replaced(client, admin_headers, request_id):
    response = client.get(
        "/api/v1/students", headers={**admin_headers, "X-Request-ID": request_id}
    )

    assert GENERATED.match(response.headers["X-Request-ID"])


def test_problem_body_quotes_incoming_id(client):
    response = client.get("/api/v1/students", headers={"X-Request-ID": "trace-42"})

    assert response.status_code == 401
    assert response.get_json()["request_id"] == "trace-42"


def test_problem_body_quotes_generated_id(client, admin_headers):
    response = client.get("/api/v1/nothing", headers=admin_headers)

    assert response.get_json()["request_id"] == response.headers["X-Request-ID"]
    assert GENERATED.match(response.get_json()["request_id"])


def test_validation_problem_quotes_id(client, admin_headers):
    response = client.post(
        "/api/v1/institutions",
        json={},
        headers={**admin_headers, "X-Request-ID": "trace-43"},
    )

    assert response.status_code == 422
    assert response.get_json()["request_id"] == "trace-43"


def test_health_echoes_id(client):
    response = client.get("/healthz", headers={"X-Request-ID": "probe-1"})

    assert response.headers["X-Request-ID"] == "probe-1"


def test_id_does_not_leak_between_requests(client, admin_headers):
    client.get("/api/v1/students", headers={**admin_headers, "X-Request-ID": "first"})

    response = client.get("/api/v1/students", headers=admin_headers)

    assert response.headers["X-Request-ID"] != "first"


def test_trailing_newline_id_is_replaced(client, admin_headers):
    response = client.get(
        "/api/v1/students",
        headers=admin_headers,
        environ_overrides={"HTTP_X_REQUEST_ID": "trace-44\n"},
    )

    assert response.status_code == 200
    assert GENERATED.match(response.headers["X-Request-ID"])


def test_nul_in_query_is_422(client, auth):
    response = client.get(
        "/api/v1/students/ledger?entity_type=a%00b", headers=auth(Role.system_admin)
    )

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == "entity_type"


def test_nul_in_nested_json_is_422(client, auth):
    headers = auth(Role.student, email="n@example.com")

    response = client.post(
        "/api/v1/students/me",
        json={"full_name": "Ann", "skills": ["SQL", "Py\u0000thon"]},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0] == {
        "location": "json",
        "field": "skills.1",
        "detail": "NUL characters are not allowed.",
    }


def test_escaped_backslash_u0000_is_text(client, auth):
    headers = auth(Role.student, email="n@example.com")

    response = client.post(
        "/api/v1/students/me",
        json={"full_name": "Ann \\u0000 Wanjiku"},
        headers=headers,
    )

    assert response.status_code == 201
    assert response.get_json()["full_name"] == "Ann \\u0000 Wanjiku"

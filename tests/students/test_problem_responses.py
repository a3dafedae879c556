"""Bad input gets an RFC 9457 problem body that names the field, and no traceback."""

from __future__ import annotations

import json

import pytest

from edulink.auth import Role
from tests.students.helpers import (
    PROBLEM_JSON,
    create_institution,
    create_profile,
    error_fields,
    row_count,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def system_admin(person):
    return person(Role.system_admin)


@pytest.fixture
def student(client, person):
    student = person(Role.student, email="amina@mail.example.com")
    return student


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("https://")
    assert body["request_id"] == response.headers["X-Request-ID"]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert 'File "' not in text
    return body


def _post_raw(client, path, data, headers, content_type="application/json"):
    return client.post(path, data=data, content_type=content_type, headers=headers)


# Bodies


@pytest.mark.parametrize(
    "data", ['{"name": "Lakeside"', "{'name': 'Lakeside'}", "nul", '{"name": }']
)
def test_malformed_json_is_400(client, system_admin, data):
    response = _post_raw(client, "/api/v1/institutions", data, system_admin.headers)

    body = _assert_problem(response, 400)
    assert {item["location"] for item in body["errors"]} == {"json"}


def test_malformed_json_creates_nothing(client, system_admin):
    _post_raw(client, "/api/v1/institutions", "{", system_admin.headers)

    assert row_count("institutions") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": ["Lakeside"]}, "name"),
        ({"name": "Lakeside", "email_domains": "lakeside.ac.ke"}, "email_domains"),
        ({"name": "Lakeside", "email_domains": [7]}, "email_domains.0"),
        ({"name": "Lakeside", "status": True}, "status"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_wrong_types_are_422(client, system_admin, body, field):
    response = client.post(
        "/api/v1/institutions", json=body, headers=system_admin.headers
    )

    problem = _assert_problem(response, 422)
    assert error_fields(response) == {field}
    assert field in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"full_name": "Amina", "year_of_study": "third"}, "year_of_study"),
        ({"full_name": "Amina", "year_of_study": 11}, "year_of_study"),
        ({"full_name": "Amina", "year_of_study": True}, "year_of_study"),
        ({"full_name": "Amina", "skills": ["SQL", 3]}, "skills.1"),
        ({"full_name": "Amina", "skills": ["x" * 61]}, "skills.0"),
        ({"full_name": "Amina", "skills": ["s"] * 51}, "skills"),
    ],
)
def test_profile_wrong_types_are_422(client, student, body, field):
    response = client.post("/api/v1/students/me", json=body, headers=student.headers)

    _assert_problem(response, 422)
    assert error_fields(response) == {field}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/institutions", {"name": "Lakeside", "rank": 1}, "rank"),
        ("/api/v1/institutions", {"name": "Lakeside", "id": UNKNOWN_ID}, "id"),
        (
            "/api/v1/institutions",
            {"name": "Lakeside", "created_at": "2024"},
            "created_at",
        ),
    ],
)
def test_unknown_fields_are_422(client, system_admin, path, body, field):
    response = client.post(path, json=body, headers=system_admin.headers)

    _assert_problem(response, 422)
    assert error_fields(response) == {field}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"full_name": "Amina", "trust_level": 4}, "trust_level"),
        ({"full_name": "Amina", "verified": True}, "verified"),
        ({"full_name": "Amina", "email": "other@example.com"}, "email"),
    ],
)
def test_read_only_profile_fields_are_422(client, student, body, field):
    response = client.post("/api/v1/students/me", json=body, headers=student.headers)

    _assert_problem(response, 422)
    assert error_fields(response) == {field}
    assert row_count("students") == 0


def test_missing_required_field_is_422(client, system_admin):
    response = client.post(
        "/api/v1/institutions", json={}, headers=system_admin.headers
    )

    _assert_problem(response, 422)
    assert error_fields(response) == {"name"}


def test_missing_fields_are_all_named(client, system_admin):
    institution = create_institution(client, system_admin, "Lakeside")

    response = client.post(
        f"/api/v1/institutions/{institution['id']}/cohorts",
        json={"name": "BSc"},
        headers=system_admin.headers,
    )

    _assert_problem(response, 422)
    assert error_fields(response) == {"department_id", "start_year", "end_year"}


@pytest.mark.parametrize("body", [[], "Lakeside", 3, None])
def test_non_object_body_is_422(client, system_admin, body):
    response = _post_raw(
        client, "/api/v1/institutions", json.dumps(body), system_admin.headers
    )

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON


def test_form_body_is_rejected(client, system_admin):
    response = _post_raw(
        client,
        "/api/v1/institutions",
        "name=Lakeside",
        system_admin.headers,
        content_type="application/x-www-form-urlencoded",
    )

    assert 400 <= response.status_code < 500
    assert response.mimetype == PROBLEM_JSON
    assert row_count("institutions") == 0


@pytest.mark.parametrize(
    ("text", "field"),
    [("Lake\x00side", "name"), ("Lake\ud800side", "name")],
)
def test_unstorable_text_is_422(client, system_admin, text, field):
    """PostgreSQL cannot store NUL or lone surrogates, so they fail validation."""
    data = json.dumps({"name": text})

    response = _post_raw(client, "/api/v1/institutions", data, system_admin.headers)

    _assert_problem(response, 422)
    assert error_fields(response) == {field}


def test_nul_in_query_is_422(client, system_admin):
    response = client.get("/api/v1/institutions?q=a%00b", headers=system_admin.headers)

    _assert_problem(response, 422)
    assert error_fields(response) == {"q"}


def test_nul_in_skills_is_422(client, student):
    response = client.post(
        "/api/v1/students/me",
        json={"full_name": "Amina", "skills": ["SQL\x00"]},
        headers=student.headers,
    )

    _assert_problem(response, 422)
    assert error_fields(response) == {"skills.0"}


# Ids


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/students/not-a-uuid",
        "/api/v1/students/12345",
        "/api/v1/institutions/not-a-uuid",
        f"/api/v1/institutions/{UNKNOWN_ID[:-1]}/departments",
        f"/api/v1/institutions/{UNKNOWN_ID}/claims/nope/decision",
    ],
)
def test_invalid_uuid_in_path_is_404(client, system_admin, path):
    response = client.get(path, headers=system_admin.headers)

    body = _assert_problem(response, 404)
    assert path in body["detail"]


def test_invalid_uuid_in_body_is_422(client, student):
    create_profile(client, student)

    response = client.post(
        "/api/v1/students/me/claims",
        json={"institution_id": "not-a-uuid"},
        headers=student.headers,
    )

    _assert_problem(response, 422)
    assert error_fields(response) == {"institution_id"}


def test_invalid_uuid_in_query_is_422(client, system_admin):
    response = client.get(
        "/api/v1/students?institution_id=nope", headers=system_admin.headers
    )

    _assert_problem(response, 422)
    assert error_fields(response) == {"institution_id"}


# Sizes, routes and methods


def test_oversized_body_is_413(client, system_admin):
    data = json.dumps({"name": "x" * (1024 * 1024 + 1)})

    response = _post_raw(client, "/api/v1/institutions", data, system_admin.headers)

    body = _assert_problem(response, 413)
    assert "1048576" in body["detail"]
    assert row_count("institutions") == 0


def test_small_content_limit_is_enforced(
    client, students_app, system_admin, monkeypatch
):
    monkeypatch.setitem(students_app.config, "MAX_CONTENT_LENGTH", 64)
    data = json.dumps({"name": "x" * 100})

    response = _post_raw(client, "/api/v1/institutions", data, system_admin.headers)

    _assert_problem(response, 413)


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/api/v2/students", "/", "/api/v1/students/me/extra"]
)
def test_unknown_route_is_404_problem(client, system_admin, path):
    response = client.get(path, headers=system_admin.headers)

    _assert_problem(response, 404)


def test_unknown_route_without_token_is_404(client):
    response = client.get("/api/v1/nothing")

    _assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/students/me", {"GET", "POST", "PATCH"}),
        ("PUT", "/api/v1/institutions", {"GET", "POST"}),
        ("POST", f"/api/v1/students/{UNKNOWN_ID}", {"GET"}),
        (
            "GET",
            f"/api/v1/institutions/{UNKNOWN_ID}/claims/{UNKNOWN_ID}/decision",
            {"POST"},
        ),
    ],
)
def test_wrong_method_is_405_with_allow(client, system_admin, method, path, allowed):
    response = client.open(path, method=method, headers=system_admin.headers)

    body = _assert_problem(response, 405)
    listed = {name.strip() for name in response.headers["Allow"].split(",")}
    assert allowed <= listed
    assert method not in listed
    assert method in body["detail"]


def test_forbidden_role_is_403_problem(client, person):
    response = client.post(
        "/api/v1/institutions",
        json={"name": "Lakeside"},
        headers=person(Role.student).headers,
    )

    body = _assert_problem(response, 403)
    assert body["allowed_roles"] == ["system_admin"]


def test_missing_token_is_401_problem(client):
    response = client.get("/api/v1/students")

    _assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"

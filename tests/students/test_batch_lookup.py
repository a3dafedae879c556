"""Batch lookup by ids, and the SQL statement count of lists and lookups."""

from __future__ import annotations

import uuid

import pytest

from edulink.auth import Role
from edulink.testing.guard import count_queries
from students.db import db
from tests.students.helpers import (
    PROBLEM_JSON,
    ServiceCaller,
    claim,
    create_institution,
    create_profile,
    error_fields,
    insert_students,
    item_ids,
)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _lookup(client, caller, ids):
    joined = ",".join(str(student_id) for student_id in ids)
    return client.get(f"/api/v1/students?ids={joined}", headers=caller.headers)


@pytest.fixture
def system_admin(person):
    return person(Role.system_admin)


@pytest.fixture
def two_students(client, person, system_admin):
    """Amina with a pending claim to North, Baraka with one to South."""
    north = create_institution(client, system_admin, "North University")
    south = create_institution(client, system_admin, "South College")
    amina = person(Role.student, email="amina@mail.example.com")
    baraka = person(Role.student, email="baraka@mail.example.com")
    ids = [create_profile(client, amina)["id"], create_profile(client, baraka)["id"]]
    claim(client, amina, north["id"])
    claim(client, baraka, south["id"])
    return {"north": north, "south": south, "ids": ids, "amina": amina}


def test_lookup_follows_order_of_ids(client, system_admin, two_students):
    amina_id, baraka_id = two_students["ids"]

    response = _lookup(client, system_admin, [baraka_id, amina_id])

    assert response.status_code == 200
    assert item_ids(response) == [baraka_id, amina_id]
    assert response.get_json()["next"] is None


def test_lookup_skips_unknown_ids(client, system_admin, two_students):
    amina_id, baraka_id = two_students["ids"]

    response = _lookup(client, system_admin, [UNKNOWN_ID, baraka_id, amina_id])

    assert item_ids(response) == [baraka_id, amina_id]


def test_lookup_drops_repeated_ids(client, system_admin, two_students):
    amina_id, _ = two_students["ids"]

    response = _lookup(client, system_admin, [amina_id, amina_id])

    assert item_ids(response) == [amina_id]


def test_lookup_accepts_repeated_parameter(client, system_admin, two_students):
    amina_id, baraka_id = two_students["ids"]

    response = client.get(
        f"/api/v1/students?ids={amina_id}&ids={baraka_id}",
        headers=system_admin.headers,
    )

    assert item_ids(response) == [amina_id, baraka_id]


def test_service_caller_looks_up(client, tokens, two_students):
    response = _lookup(client, ServiceCaller(tokens), two_students["ids"])

    assert item_ids(response) == two_students["ids"]


def test_institution_admin_gets_visible_only(client, person, two_students):
    admin = person(Role.institution_admin, org_ids=[two_students["north"]["id"]])

    response = _lookup(client, admin, two_students["ids"])

    assert response.status_code == 200
    assert item_ids(response) == [two_students["ids"][0]]


@pytest.mark.parametrize(
    "role", [Role.student, Role.employer_admin, Role.supervisor, Role.support_staff]
)
def test_lookup_rejects_other_roles(client, person, two_students, role):
    response = _lookup(client, person(role), two_students["ids"])

    assert response.status_code == 403
    assert response.mimetype == PROBLEM_JSON


def test_student_cannot_look_up_self(client, two_students):
    response = _lookup(client, two_students["amina"], two_students["ids"][:1])

    assert response.status_code == 403


def test_lookup_of_200_ids_is_allowed(client, system_admin):
    ids = insert_students(200)

    response = _lookup(client, system_admin, ids)

    assert response.status_code == 200
    assert item_ids(response) == [str(student_id) for student_id in ids]


def test_lookup_of_201_ids_is_422(client, system_admin):
    ids = [uuid.uuid4() for _ in range(201)]

    response = _lookup(client, system_admin, ids)

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert error_fields(response) == {"ids"}


@pytest.mark.parametrize(
    "value",
    [
        f"{UNKNOWN_ID},not-a-uuid",
        "12345",
        f"{UNKNOWN_ID[:-1]}g",
        ",",
    ],
)
def test_malformed_ids_are_422(client, system_admin, value):
    response = client.get(f"/api/v1/students?ids={value}", headers=system_admin.headers)

    assert response.status_code == 422
    assert error_fields(response) == {"ids"}


# SQL statement counts


def _statements_for(client, caller, path) -> list[str]:
    assert db.engine is not None
    with count_queries(db.engine) as counter:
        response = client.get(path, headers=caller.headers)
    assert response.status_code == 200, response.get_json()
    return counter.recorded_statements


def test_lookup_runs_one_select(client, system_admin):
    ids = insert_students(200)
    joined = ",".join(str(student_id) for student_id in ids)

    single_id = _statements_for(client, system_admin, f"/api/v1/students?ids={ids[0]}")
    all_ids = _statements_for(client, system_admin, f"/api/v1/students?ids={joined}")

    assert len(single_id) == 1
    assert len(all_ids) == 1
    assert all_ids[0].lstrip().upper().startswith("SELECT")


def test_admin_lookup_runs_one_select(client, person, two_students):
    admin = person(Role.institution_admin, org_ids=[two_students["north"]["id"]])
    joined = ",".join(two_students["ids"])

    statements = _statements_for(client, admin, f"/api/v1/students?ids={joined}")

    assert len(statements) == 1


def test_student_list_statements_constant(client, system_admin):
    insert_students(101)

    small = _statements_for(client, system_admin, "/api/v1/students?limit=1")
    large = _statements_for(client, system_admin, "/api/v1/students?limit=100")

    assert len(small) == len(large)
    assert len(large) == 1


def test_institution_list_statements_constant(client, system_admin):
    for number in range(101):
        create_institution(client, system_admin, f"Institute {number}")

    small = _statements_for(client, system_admin, "/api/v1/institutions?limit=1")
    large = _statements_for(client, system_admin, "/api/v1/institutions?limit=100")

    assert len(small) == len(large)
    assert len(large) == 1


def test_admin_list_statements_independent_of_size(
    client, person, system_admin, two_students
):
    north_id = two_students["north"]["id"]
    for number in range(5):
        student = person(Role.student, email=f"s{number}@mail.example.com")
        create_profile(client, student)
        claim(client, student, north_id)
    admin = person(Role.institution_admin, org_ids=[north_id])

    small = _statements_for(client, admin, "/api/v1/students?limit=1")
    large = _statements_for(client, admin, "/api/v1/students?limit=100")

    assert len(small) == len(large)
    assert len(large) == 1


def test_claims_list_statements_independent_of_size(
    client, person, system_admin, two_students
):
    north_id = two_students["north"]["id"]
    for number in range(5):
        student = person(Role.student, email=f"s{number}@mail.example.com")
        create_profile(client, student)
        claim(client, student, north_id)
    admin = person(Role.institution_admin, org_ids=[north_id])
    path = f"/api/v1/institutions/{north_id}/claims"

    small = _statements_for(client, admin, f"{path}?limit=1")
    large = _statements_for(client, admin, f"{path}?limit=100")

    assert len(small) == len(large)


def test_department_list_statements_constant(client, system_admin, two_students):
    north_id = two_students["north"]["id"]
    for number in range(3):
        client.post(
            f"/api/v1/institutions/{north_id}/departments",
            json={"name": f"Department {number}"},
            headers=system_admin.headers,
        )
    path = f"/api/v1/institutions/{north_id}/departments"

    small = _statements_for(client, system_admin, f"{path}?limit=1")
    large = _statements_for(client, system_admin, f"{path}?limit=100")

    assert len(small) == len(large)

"""Institutions, departments and cohorts: who may create and change them."""

from __future__ import annotations

import pytest

from edulink.auth import Role
from tests.students.helpers import (
    PROBLEM_JSON,
    create_institution,
    error_fields,
    item_ids,
)


@pytest.fixture
def system_admin(person):
    return person(Role.system_admin)


@pytest.fixture
def university(client, system_admin):
    return create_institution(
        client, system_admin, "Example University", domains=("uni.example.ac.ke",)
    )


@pytest.fixture
def university_admin(person, university):
    return person(Role.institution_admin, org_ids=[university["id"]])


def _etag(client, institution_id, caller) -> str:
    response = client.get(
        f"/api/v1/institutions/{institution_id}", headers=caller.headers
    )
    assert response.status_code == 200
    return response.headers["ETag"]


def _patch(client, institution_id, caller, changes, etag=None):
    headers = dict(caller.headers)
    if etag:
        headers["If-Match"] = etag
    return client.patch(
        f"/api/v1/institutions/{institution_id}", json=changes, headers=headers
    )


# Creation


def test_create_institution_returns_201(client, system_admin):
    response = client.post(
        "/api/v1/institutions",
        json={
            "name": "  Lakeside Polytechnic ",
            "email_domains": ["Lakeside.AC.KE", "lakeside.ac.ke"],
        },
        headers=system_admin.headers,
    )

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/institutions/{body['id']}")
    assert response.headers["ETag"]
    assert body["name"] == "Lakeside Polytechnic"
    assert body["email_domains"] == ["lakeside.ac.ke"]
    assert body["status"] == "active"


def test_created_institution_readable_at_location(client, system_admin):
    created = client.post(
        "/api/v1/institutions", json={"name": "Lakeside"}, headers=system_admin.headers
    )

    response = client.get(created.headers["Location"], headers=system_admin.headers)

    assert response.status_code == 200
    assert response.headers["ETag"] == created.headers["ETag"]


@pytest.mark.parametrize(
    "duplicate", ["Example University", "EXAMPLE university", "  example University  "]
)
def test_duplicate_name_is_409(client, system_admin, university, duplicate):
    response = client.post(
        "/api/v1/institutions", json={"name": duplicate}, headers=system_admin.headers
    )

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["field"] == "name"


@pytest.mark.parametrize(
    "role",
    [Role.institution_admin, Role.student, Role.employer_admin, Role.service],
)
def test_only_system_admin_creates(client, person, role):
    response = client.post(
        "/api/v1/institutions", json={"name": "Lakeside"}, headers=person(role).headers
    )

    assert response.status_code == 403


@pytest.mark.parametrize(
    "domain", ["not a domain", "localhost", "-bad.example.com", "a..example.com"]
)
def test_invalid_email_domain_is_422(client, system_admin, domain):
    response = client.post(
        "/api/v1/institutions",
        json={"name": "Lakeside", "email_domains": [domain]},
        headers=system_admin.headers,
    )

    assert response.status_code == 422
    assert error_fields(response) == {"email_domains.0"}


def test_unknown_status_is_422(client, system_admin):
    response = client.post(
        "/api/v1/institutions",
        json={"name": "Lakeside", "status": "closed"},
        headers=system_admin.headers,
    )

    assert response.status_code == 422
    assert error_fields(response) == {"status"}


def test_name_search_escapes_wildcards(client, system_admin, university):
    create_institution(client, system_admin, "100% Tech")

    percent = client.get("/api/v1/institutions?q=%25", headers=system_admin.headers)
    underscore = client.get("/api/v1/institutions?q=_", headers=system_admin.headers)

    assert [item["name"] for item in percent.get_json()["items"]] == ["100% Tech"]
    assert underscore.get_json()["items"] == []


def test_name_search_ignores_case(client, system_admin, university):
    response = client.get(
        "/api/v1/institutions?q=EXAMPLE", headers=system_admin.headers
    )

    assert item_ids(response) == [university["id"]]


# Changes


def test_admin_renames_own_institution(client, university, university_admin):
    etag = _etag(client, university["id"], university_admin)

    response = _patch(
        client, university["id"], university_admin, {"name": "Example Univ."}, etag
    )

    assert response.status_code == 200
    assert response.get_json()["name"] == "Example Univ."
    assert response.headers["ETag"] != etag


def test_rename_without_if_match_is_428(client, university, university_admin):
    response = _patch(client, university["id"], university_admin, {"name": "New"})

    assert response.status_code == 428


def test_rename_with_stale_etag_is_412(client, university, university_admin):
    etag = _etag(client, university["id"], university_admin)
    _patch(client, university["id"], university_admin, {"name": "First"}, etag)

    response = _patch(
        client, university["id"], university_admin, {"name": "Second"}, etag
    )

    assert response.status_code == 412


def test_rename_to_taken_name_is_409(
    client, system_admin, university, university_admin
):
    create_institution(client, system_admin, "Lakeside")
    etag = _etag(client, university["id"], university_admin)

    response = _patch(
        client, university["id"], university_admin, {"name": "LAKESIDE"}, etag
    )

    assert response.status_code == 409


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "suspended"},
        {"email_domains": ["attacker.example.com"]},
        {"name": "Renamed", "status": "active"},
    ],
)
def test_admin_cannot_change_status_or_domains(
    client, university, university_admin, changes
):
    etag = _etag(client, university["id"], university_admin)

    response = _patch(client, university["id"], university_admin, changes, etag)

    assert response.status_code == 403
    current = client.get(
        f"/api/v1/institutions/{university['id']}", headers=university_admin.headers
    ).get_json()
    assert current == university


def test_system_admin_changes_status_and_domains(client, system_admin, university):
    etag = _etag(client, university["id"], system_admin)

    response = _patch(
        client,
        university["id"],
        system_admin,
        {"status": "suspended", "email_domains": ["new.example.ac.ke"]},
        etag,
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "suspended"
    assert response.get_json()["email_domains"] == ["new.example.ac.ke"]


def test_admin_cannot_rename_visible_other(client, system_admin, university_admin):
    """A public institution is visible, so changing it is forbidden, not missing."""
    other = create_institution(client, system_admin, "Lakeside")
    etag = _etag(client, other["id"], university_admin)

    response = _patch(client, other["id"], university_admin, {"name": "Mine"}, etag)

    assert response.status_code == 403


def test_admin_cannot_rename_hidden_other(client, system_admin, university_admin):
    """A suspended institution is invisible to other admins, so it is 404."""
    other = create_institution(client, system_admin, "Lakeside", status="suspended")

    response = _patch(client, other["id"], university_admin, {"name": "Mine"}, "*")

    assert response.status_code == 404


def test_admin_renames_own_requested_institution(client, system_admin, person):
    requested = create_institution(client, system_admin, "Lakeside", status="requested")
    admin = person(Role.institution_admin, org_ids=[requested["id"]])
    etag = _etag(client, requested["id"], admin)

    response = _patch(client, requested["id"], admin, {"name": "Lakeside Poly"}, etag)

    assert response.status_code == 200


@pytest.mark.parametrize("role", [Role.student, Role.employer_admin, Role.service])
def test_non_admins_cannot_patch(client, person, university, role):
    response = _patch(client, university["id"], person(role), {"name": "X"}, "*")

    assert response.status_code == 403


# Departments


def _add_department(client, institution_id, caller, name="Computing"):
    return client.post(
        f"/api/v1/institutions/{institution_id}/departments",
        json={"name": name},
        headers=caller.headers,
    )


def _add_cohort(client, institution_id, caller, department_id, **fields):
    body = {
        "department_id": department_id,
        "name": "BSc CS",
        "start_year": 2024,
        "end_year": 2028,
        **fields,
    }
    return client.post(
        f"/api/v1/institutions/{institution_id}/cohorts",
        json=body,
        headers=caller.headers,
    )


def test_admin_creates_and_lists_departments(client, university, university_admin):
    first = _add_department(client, university["id"], university_admin, "Computing")
    second = _add_department(client, university["id"], university_admin, "Law")

    listed = client.get(
        f"/api/v1/institutions/{university['id']}/departments",
        headers=university_admin.headers,
    )

    assert first.status_code == 201
    assert first.get_json()["institution_id"] == university["id"]
    assert item_ids(listed) == [first.get_json()["id"], second.get_json()["id"]]


def test_student_lists_public_departments(client, person, university, university_admin):
    _add_department(client, university["id"], university_admin)

    response = client.get(
        f"/api/v1/institutions/{university['id']}/departments",
        headers=person(Role.student).headers,
    )

    assert response.status_code == 200
    assert len(response.get_json()["items"]) == 1


def test_duplicate_department_is_409(client, university, university_admin):
    _add_department(client, university["id"], university_admin)

    response = _add_department(client, university["id"], university_admin)

    assert response.status_code == 409


def test_other_admin_cannot_add_department(client, system_admin, university, person):
    other = create_institution(client, system_admin, "Lakeside")
    other_admin = person(Role.institution_admin, org_ids=[other["id"]])

    response = _add_department(client, university["id"], other_admin)

    assert response.status_code == 403


def test_student_cannot_add_department(client, person, university):
    response = _add_department(client, university["id"], person(Role.student))

    assert response.status_code == 403


def test_department_delete_is_204_then_404(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()
    path = f"/api/v1/institutions/{university['id']}/departments/{department['id']}"

    first = client.delete(path, headers=university_admin.headers)
    second = client.delete(path, headers=university_admin.headers)

    assert first.status_code == 204
    assert second.status_code == 404


def test_department_delete_removes_cohorts(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()
    _add_cohort(client, university["id"], university_admin, department["id"])

    client.delete(
        f"/api/v1/institutions/{university['id']}/departments/{department['id']}",
        headers=university_admin.headers,
    )

    cohorts = client.get(
        f"/api/v1/institutions/{university['id']}/cohorts",
        headers=university_admin.headers,
    )
    assert cohorts.get_json()["items"] == []


def test_department_of_other_institution_delete_404(
    client, system_admin, university, university_admin
):
    other = create_institution(client, system_admin, "Lakeside")
    foreign = _add_department(client, other["id"], system_admin).get_json()

    response = client.delete(
        f"/api/v1/institutions/{university['id']}/departments/{foreign['id']}",
        headers=university_admin.headers,
    )

    assert response.status_code == 404


# Cohorts


def test_admin_creates_and_lists_cohorts(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()

    created = _add_cohort(client, university["id"], university_admin, department["id"])
    listed = client.get(
        f"/api/v1/institutions/{university['id']}/cohorts",
        headers=university_admin.headers,
    )

    assert created.status_code == 201
    assert created.get_json()["department_id"] == department["id"]
    assert item_ids(listed) == [created.get_json()["id"]]


def test_cohort_of_one_year_is_allowed(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()

    response = _add_cohort(
        client,
        university["id"],
        university_admin,
        department["id"],
        start_year=2024,
        end_year=2024,
    )

    assert response.status_code == 201


def test_cohort_end_before_start_is_422(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()

    response = _add_cohort(
        client,
        university["id"],
        university_admin,
        department["id"],
        start_year=2026,
        end_year=2025,
    )

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert error_fields(response) == {"end_year"}


def test_cohort_foreign_department_is_422(
    client, system_admin, university, university_admin
):
    other = create_institution(client, system_admin, "Lakeside")
    foreign = _add_department(client, other["id"], system_admin).get_json()

    response = _add_cohort(client, university["id"], university_admin, foreign["id"])

    assert response.status_code == 422
    assert error_fields(response) == {"department_id"}


def test_cohort_unknown_department_is_422(client, university, university_admin):
    response = _add_cohort(
        client,
        university["id"],
        university_admin,
        "00000000-0000-4000-8000-000000000000",
    )

    assert response.status_code == 422
    assert error_fields(response) == {"department_id"}


def test_duplicate_cohort_is_409(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()
    _add_cohort(client, university["id"], university_admin, department["id"])

    response = _add_cohort(client, university["id"], university_admin, department["id"])

    assert response.status_code == 409


def test_cohort_delete_is_204_then_404(client, university, university_admin):
    department = _add_department(client, university["id"], university_admin).get_json()
    cohort = _add_cohort(
        client, university["id"], university_admin, department["id"]
    ).get_json()
    path = f"/api/v1/institutions/{university['id']}/cohorts/{cohort['id']}"

    first = client.delete(path, headers=university_admin.headers)
    second = client.delete(path, headers=university_admin.headers)

    assert first.status_code == 204
    assert second.status_code == 404


def test_other_admin_cannot_delete_cohort(
    client, system_admin, person, university, university_admin
):
    department = _add_department(client, university["id"], university_admin).get_json()
    cohort = _add_cohort(
        client, university["id"], university_admin, department["id"]
    ).get_json()
    other = create_institution(client, system_admin, "Lakeside")
    other_admin = person(Role.institution_admin, org_ids=[other["id"]])

    response = client.delete(
        f"/api/v1/institutions/{university['id']}/cohorts/{cohort['id']}",
        headers=other_admin.headers,
    )

    assert response.status_code == 403
    listed = client.get(
        f"/api/v1/institutions/{university['id']}/cohorts",
        headers=university_admin.headers,
    )
    assert item_ids(listed) == [cohort["id"]]


def test_weak_if_none_match_is_304(client, university, university_admin):
    """A gzipping proxy weakens the ETag, and the client sends the weak form back."""
    etag = _etag(client, university["id"], university_admin)

    response = client.get(
        f"/api/v1/institutions/{university['id']}",
        headers={**university_admin.headers, "If-None-Match": f"W/{etag}"},
    )

    assert response.status_code == 304

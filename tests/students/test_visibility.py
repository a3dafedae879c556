"""Who sees which student, institution and claim, for every role.

An object the caller may not see gets 404, never 403, so ids of other
people's records cannot be probed.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edulink.auth import Role
from tests.students.helpers import (
    ServiceCaller,
    claim,
    create_institution,
    create_profile,
    decide,
    item_ids,
)


@pytest.fixture
def world(client, person, tokens):
    """Two institutions, their admins, and three students with claims.

    Amina has an approved claim to North, Baraka a pending claim to South and
    Chebet a claim to North that its admin rejected.
    """
    system_admin = person(Role.system_admin)
    north = create_institution(client, system_admin, "North University")
    south = create_institution(client, system_admin, "South College")
    north_admin = person(Role.institution_admin, org_ids=[north["id"]])
    south_admin = person(Role.institution_admin, org_ids=[south["id"]])

    amina = person(Role.student, email="amina@mail.example.com")
    baraka = person(Role.student, email="baraka@mail.example.com")
    chebet = person(Role.student, email="chebet@mail.example.com")
    amina_profile = create_profile(client, amina, "Amina")
    baraka_profile = create_profile(client, baraka, "Baraka")
    chebet_profile = create_profile(client, chebet, "Chebet")

    amina_claim = claim(client, amina, north["id"]).get_json()
    assert (
        decide(
            client, north_admin, north["id"], amina_claim["id"], "approve"
        ).status_code
        == 200
    )
    assert claim(client, baraka, south["id"]).status_code == 201
    chebet_claim = claim(client, chebet, north["id"]).get_json()
    rejected = decide(
        client, north_admin, north["id"], chebet_claim["id"], "reject", "Not enrolled"
    )
    assert rejected.status_code == 200

    return SimpleNamespace(
        north=north,
        south=south,
        system_admin=system_admin,
        north_admin=north_admin,
        south_admin=south_admin,
        service=ServiceCaller(tokens),
        amina=amina,
        baraka=baraka,
        chebet=chebet,
        ids={
            "amina": amina_profile["id"],
            "baraka": baraka_profile["id"],
            "chebet": chebet_profile["id"],
        },
        employer_admin=person(Role.employer_admin, org_ids=[north["id"]]),
        supervisor=person(Role.supervisor, org_ids=[north["id"]]),
        support_staff=person(Role.support_staff),
    )


# Which callers see which student; the rest get 404.
VISIBLE_STUDENTS = {
    "system_admin": {"amina", "baraka", "chebet"},
    "service": {"amina", "baraka", "chebet"},
    "north_admin": {"amina"},
    "south_admin": {"baraka"},
    "amina": {"amina"},
    "baraka": {"baraka"},
    "chebet": {"chebet"},
    "employer_admin": set(),
    "supervisor": set(),
    "support_staff": set(),
}


@pytest.mark.parametrize("caller", sorted(VISIBLE_STUDENTS))
def test_student_by_id_per_role(client, world, caller):
    headers = getattr(world, caller).headers

    for name, student_id in world.ids.items():
        response = client.get(f"/api/v1/students/{student_id}", headers=headers)

        expected = 200 if name in VISIBLE_STUDENTS[caller] else 404
        assert response.status_code == expected, (caller, name, response.get_json())


@pytest.mark.parametrize("caller", sorted(VISIBLE_STUDENTS))
def test_student_list_per_role(client, world, caller):
    response = client.get(
        "/api/v1/students?limit=100", headers=getattr(world, caller).headers
    )

    assert response.status_code == 200
    expected = {world.ids[name] for name in VISIBLE_STUDENTS[caller]}
    assert set(item_ids(response)) == expected


def test_hidden_student_is_404_problem(client, world):
    response = client.get(
        f"/api/v1/students/{world.ids['baraka']}", headers=world.north_admin.headers
    )

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert world.ids["baraka"] in response.get_json()["detail"]


def test_rejected_claim_hides_student(client, world):
    response = client.get(
        f"/api/v1/students/{world.ids['chebet']}", headers=world.north_admin.headers
    )

    assert response.status_code == 404


def test_pending_claim_shows_student(client, world):
    response = client.get(
        f"/api/v1/students/{world.ids['baraka']}", headers=world.south_admin.headers
    )

    assert response.status_code == 200
    assert response.get_json()["verified"] is False


def test_admin_of_both_sees_both(client, world, person):
    both = person(
        Role.institution_admin, org_ids=[world.north["id"], world.south["id"]]
    )

    response = client.get("/api/v1/students?limit=100", headers=both.headers)

    assert set(item_ids(response)) == {world.ids["amina"], world.ids["baraka"]}


def test_admin_without_institutions_sees_none(client, world, person):
    nobody = person(Role.institution_admin)

    listed = client.get("/api/v1/students", headers=nobody.headers)
    single = client.get(
        f"/api/v1/students/{world.ids['amina']}", headers=nobody.headers
    )

    assert item_ids(listed) == []
    assert single.status_code == 404


def test_list_filters_by_institution(client, world):
    response = client.get(
        f"/api/v1/students?institution_id={world.north['id']}",
        headers=world.system_admin.headers,
    )

    assert item_ids(response) == [world.ids["amina"]]


def test_list_filters_by_verified(client, world):
    verified = client.get(
        "/api/v1/students?verified=true", headers=world.system_admin.headers
    )
    unverified = client.get(
        "/api/v1/students?verified=false", headers=world.system_admin.headers
    )

    assert item_ids(verified) == [world.ids["amina"]]
    assert set(item_ids(unverified)) == {world.ids["baraka"], world.ids["chebet"]}


def test_unknown_student_id_is_404(client, world):
    response = client.get(
        "/api/v1/students/00000000-0000-4000-8000-000000000000",
        headers=world.system_admin.headers,
    )

    assert response.status_code == 404


# Institutions by status


@pytest.fixture
def institutions_by_status(client, person):
    """One institution in each status, and the admin of the requested one."""
    system_admin = person(Role.system_admin)
    created = {
        status: create_institution(
            client, system_admin, f"{status} institute", status=status
        )
        for status in ("requested", "verified", "active", "suspended")
    }
    ids = {status: body["id"] for status, body in created.items()}
    requested_admin = person(Role.institution_admin, org_ids=[ids["requested"]])
    return SimpleNamespace(
        ids=ids, system_admin=system_admin, requested_admin=requested_admin
    )


def _listed_statuses(client, headers) -> set[str]:
    response = client.get("/api/v1/institutions?limit=100", headers=headers)
    assert response.status_code == 200
    return {item["status"] for item in response.get_json()["items"]}


def test_system_admin_lists_every_institution(client, institutions_by_status):
    statuses = _listed_statuses(client, institutions_by_status.system_admin.headers)

    assert statuses == {"requested", "verified", "active", "suspended"}


@pytest.mark.parametrize(
    "role",
    [Role.student, Role.employer_admin, Role.supervisor, Role.support_staff],
)
def test_others_list_public_institutions(client, institutions_by_status, person, role):
    statuses = _listed_statuses(client, person(role).headers)

    assert statuses == {"verified", "active"}


def test_own_admin_lists_requested_institution(client, institutions_by_status):
    statuses = _listed_statuses(client, institutions_by_status.requested_admin.headers)

    assert statuses == {"requested", "verified", "active"}


@pytest.mark.parametrize("status", ["requested", "suspended"])
def test_inactive_institution_hidden_from_student(
    client, institutions_by_status, person, status
):
    institution_id = institutions_by_status.ids[status]

    response = client.get(
        f"/api/v1/institutions/{institution_id}", headers=person(Role.student).headers
    )

    assert response.status_code == 404


def test_inactive_institution_hidden_from_other_admin(
    client, institutions_by_status, person
):
    other_admin = person(
        Role.institution_admin, org_ids=[institutions_by_status.ids["active"]]
    )

    response = client.get(
        f"/api/v1/institutions/{institutions_by_status.ids['suspended']}",
        headers=other_admin.headers,
    )

    assert response.status_code == 404


def test_own_admin_reads_requested_institution(client, institutions_by_status):
    institution_id = institutions_by_status.ids["requested"]

    response = client.get(
        f"/api/v1/institutions/{institution_id}",
        headers=institutions_by_status.requested_admin.headers,
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "requested"


def test_hidden_institution_departments_are_404(client, institutions_by_status, person):
    institution_id = institutions_by_status.ids["suspended"]

    response = client.get(
        f"/api/v1/institutions/{institution_id}/departments",
        headers=person(Role.student).headers,
    )

    assert response.status_code == 404


def test_status_filter_cannot_reveal_hidden(client, institutions_by_status, person):
    response = client.get(
        "/api/v1/institutions?status=suspended", headers=person(Role.student).headers
    )

    assert response.status_code == 200
    assert response.get_json()["items"] == []


# Claims lists


def test_admin_lists_own_institution_claims(client, world):
    response = client.get(
        f"/api/v1/institutions/{world.north['id']}/claims",
        headers=world.north_admin.headers,
    )

    assert response.status_code == 200
    students = {item["student_id"] for item in response.get_json()["items"]}
    assert students == {world.ids["amina"], world.ids["chebet"]}


def test_admin_filters_claims_by_status(client, world):
    response = client.get(
        f"/api/v1/institutions/{world.north['id']}/claims?status=rejected",
        headers=world.north_admin.headers,
    )

    items = response.get_json()["items"]
    assert [item["student_id"] for item in items] == [world.ids["chebet"]]
    assert items[0]["reason"] == "Not enrolled"


def test_other_admin_claims_list_is_404(client, world):
    response = client.get(
        f"/api/v1/institutions/{world.north['id']}/claims",
        headers=world.south_admin.headers,
    )

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_system_admin_lists_any_claims(client, world):
    response = client.get(
        f"/api/v1/institutions/{world.south['id']}/claims",
        headers=world.system_admin.headers,
    )

    students = [item["student_id"] for item in response.get_json()["items"]]
    assert students == [world.ids["baraka"]]


@pytest.mark.parametrize("caller", ["amina", "employer_admin", "service"])
def test_claims_list_rejects_non_admins(client, world, caller):
    response = client.get(
        f"/api/v1/institutions/{world.north['id']}/claims",
        headers=getattr(world, caller).headers,
    )

    assert response.status_code == 403


def test_student_lists_only_own_claims(client, world):
    response = client.get("/api/v1/students/me/claims", headers=world.chebet.headers)

    items = response.get_json()["items"]
    assert len(items) == 1
    assert items[0]["status"] == "rejected"
    assert items[0]["student_id"] == world.ids["chebet"]

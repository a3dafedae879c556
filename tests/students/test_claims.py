"""Affiliation claims: approval by email domain, admin decisions and their limits."""

from __future__ import annotations

import pytest

from edulink.auth import Role
from tests.students.helpers import (
    PROBLEM_JSON,
    claim,
    create_institution,
    create_profile,
    decide,
    error_fields,
)

DOMAIN = "uni.example.ac.ke"


@pytest.fixture
def system_admin(person):
    return person(Role.system_admin)


@pytest.fixture
def university(client, system_admin):
    return create_institution(
        client, system_admin, "Example University", domains=(DOMAIN,)
    )


@pytest.fixture
def university_admin(person, university):
    return person(Role.institution_admin, org_ids=[university["id"]])


@pytest.fixture
def outsider(client, person):
    """A student whose email is not on the university's domain."""
    student = person(Role.student, email="wanjiru@mail.example.com")
    create_profile(client, student, "Wanjiru")
    return student


@pytest.fixture
def pending_claim(client, outsider, university):
    response = claim(client, outsider, university["id"], registration_number="REG-1")
    assert response.status_code == 201
    return response.get_json()


def _profile(client, student) -> dict:
    return client.get("/api/v1/students/me", headers=student.headers).get_json()


# Approval by email domain


def test_verified_domain_email_auto_approves(client, person, university):
    student = person(Role.student, email=f"otieno@{DOMAIN}", email_verified=True)
    create_profile(client, student)

    response = claim(client, student, university["id"])

    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "approved"
    assert body["method"] == "email_domain"
    assert body["decided_at"] is not None


def test_auto_approval_verifies_student(client, person, university):
    student = person(Role.student, email=f"otieno@{DOMAIN}", email_verified=True)
    create_profile(client, student)

    claim(client, student, university["id"], registration_number="SCT-1")

    profile = _profile(client, student)
    assert profile["verified"] is True
    assert profile["institution_id"] == university["id"]
    assert profile["trust_level"] == 2
    assert profile["registration_number"] == "SCT-1"


def test_domain_match_ignores_letter_case(client, person, university):
    student = person(Role.student, email="Otieno@UNI.Example.AC.KE")
    create_profile(client, student)

    response = claim(client, student, university["id"])

    assert response.get_json()["status"] == "approved"


def test_unverified_email_stays_pending(client, person, university):
    student = person(Role.student, email=f"otieno@{DOMAIN}", email_verified=False)
    create_profile(client, student)

    response = claim(client, student, university["id"])

    assert response.status_code == 201
    assert response.get_json()["status"] == "pending"
    assert response.get_json()["method"] == "admin_review"
    assert _profile(client, student)["verified"] is False


@pytest.mark.parametrize(
    "email",
    [
        "otieno@mail.example.com",
        f"otieno@students.{DOMAIN}",
        f"otieno@evil{DOMAIN}",
        f"{DOMAIN}@attacker.example.com",
    ],
)
def test_other_domain_stays_pending(client, person, university, email):
    student = person(Role.student, email=email)
    create_profile(client, student)

    response = claim(client, student, university["id"])

    assert response.get_json()["status"] == "pending"


def test_pending_claim_leaves_student_unverified(client, outsider, pending_claim):
    profile = _profile(client, outsider)

    assert profile["verified"] is False
    assert profile["institution_id"] is None
    assert profile["trust_level"] == 0


def test_claim_needs_a_profile(client, person, university):
    student = person(Role.student, email="x@mail.example.com")

    response = claim(client, student, university["id"])

    assert response.status_code == 404


# Admin decisions


def test_admin_approves_pending_claim(
    client, outsider, university, university_admin, pending_claim
):
    response = decide(
        client, university_admin, university["id"], pending_claim["id"], "approve"
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "approved"
    profile = _profile(client, outsider)
    assert profile["verified"] is True
    assert profile["institution_id"] == university["id"]
    assert profile["trust_level"] == 2
    assert profile["registration_number"] == "REG-1"


def test_system_admin_approves_any_claim(
    client, university, system_admin, pending_claim
):
    response = decide(
        client, system_admin, university["id"], pending_claim["id"], "approve"
    )

    assert response.status_code == 200


def test_admin_rejects_with_reason(
    client, outsider, university, university_admin, pending_claim
):
    response = decide(
        client,
        university_admin,
        university["id"],
        pending_claim["id"],
        "reject",
        "No such registration number",
    )

    assert response.status_code == 200
    assert response.get_json()["status"] == "rejected"
    assert response.get_json()["reason"] == "No such registration number"
    assert _profile(client, outsider)["verified"] is False


@pytest.mark.parametrize("reason", [None, ""])
def test_rejection_without_reason_is_422(
    client, university, university_admin, pending_claim, reason
):
    response = decide(
        client,
        university_admin,
        university["id"],
        pending_claim["id"],
        "reject",
        reason,
    )

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert "reason" in error_fields(response)


def test_rejection_without_reason_keeps_pending(
    client, outsider, university, university_admin, pending_claim
):
    decide(client, university_admin, university["id"], pending_claim["id"], "reject")

    claims = client.get("/api/v1/students/me/claims", headers=outsider.headers)
    assert claims.get_json()["items"][0]["status"] == "pending"


def test_unknown_decision_is_422(client, university, university_admin, pending_claim):
    response = decide(
        client, university_admin, university["id"], pending_claim["id"], "maybe"
    )

    assert response.status_code == 422
    assert "decision" in error_fields(response)


@pytest.mark.parametrize(
    ("first", "second"),
    [("approve", "approve"), ("approve", "reject"), ("reject", "approve")],
)
def test_deciding_twice_is_409(
    client, university, university_admin, pending_claim, first, second
):
    path_args = (client, university_admin, university["id"], pending_claim["id"])
    assert decide(*path_args, first, "Reason").status_code == 200

    response = decide(*path_args, second, "Reason")

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON


def test_auto_approved_claim_cannot_be_decided(
    client, person, university, university_admin
):
    student = person(Role.student, email=f"otieno@{DOMAIN}")
    create_profile(client, student)
    approved = claim(client, student, university["id"]).get_json()

    response = decide(
        client, university_admin, university["id"], approved["id"], "reject", "No"
    )

    assert response.status_code == 409


def test_second_pending_claim_is_409(client, system_admin, outsider, pending_claim):
    other = create_institution(client, system_admin, "Other College")

    response = claim(client, outsider, other["id"])

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON


def test_pending_claim_blocks_auto_approval(client, person, system_admin, university):
    """A student with a pending claim elsewhere cannot open a second claim.

    Otherwise the old claim stays pending next to the approved one, and the
    other institution's admins keep seeing the student.
    """
    other = create_institution(client, system_admin, "Other College")
    student = person(Role.student, email=f"otieno@{DOMAIN}")
    create_profile(client, student)
    assert claim(client, student, other["id"]).get_json()["status"] == "pending"

    response = claim(client, student, university["id"])

    assert response.status_code == 409
    assert _profile(client, student)["verified"] is False


def test_claim_after_rejection_is_allowed(
    client, outsider, university, university_admin, pending_claim
):
    decide(
        client, university_admin, university["id"], pending_claim["id"], "reject", "No"
    )

    response = claim(client, outsider, university["id"])

    assert response.status_code == 201


def test_affiliated_student_cannot_claim_again(
    client, system_admin, person, university
):
    other = create_institution(client, system_admin, "Other College")
    student = person(Role.student, email=f"otieno@{DOMAIN}")
    create_profile(client, student)
    claim(client, student, university["id"])

    response = claim(client, student, other["id"])

    assert response.status_code == 409


def test_other_institution_admin_cannot_decide(
    client, person, system_admin, university, pending_claim
):
    other = create_institution(client, system_admin, "Other College")
    other_admin = person(Role.institution_admin, org_ids=[other["id"]])

    response = decide(
        client, other_admin, university["id"], pending_claim["id"], "approve"
    )

    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON


def test_claim_under_wrong_institution_is_404(
    client, person, system_admin, pending_claim
):
    """An admin cannot reach another institution's claim through their own path."""
    other = create_institution(client, system_admin, "Other College")
    other_admin = person(Role.institution_admin, org_ids=[other["id"]])

    response = decide(client, other_admin, other["id"], pending_claim["id"], "approve")

    assert response.status_code == 404


def test_other_admin_decision_changes_nothing(
    client, person, system_admin, outsider, university, pending_claim
):
    other = create_institution(client, system_admin, "Other College")
    other_admin = person(Role.institution_admin, org_ids=[other["id"]])

    decide(client, other_admin, university["id"], pending_claim["id"], "approve")

    assert _profile(client, outsider)["verified"] is False


@pytest.mark.parametrize("role", [Role.student, Role.employer_admin, Role.service])
def test_non_admins_cannot_decide(client, person, university, pending_claim, role):
    response = decide(
        client, person(role), university["id"], pending_claim["id"], "approve"
    )

    assert response.status_code == 403


@pytest.mark.parametrize("status", ["requested", "suspended"])
def test_inactive_institution_rejects_claims(client, system_admin, outsider, status):
    inactive = create_institution(
        client, system_admin, f"{status} institute", status=status
    )

    response = claim(client, outsider, inactive["id"])

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert error_fields(response) == {"institution_id"}


def test_verified_institution_accepts_claims(client, system_admin, outsider):
    verified = create_institution(
        client, system_admin, "Verified institute", status="verified"
    )

    response = claim(client, outsider, verified["id"])

    assert response.status_code == 201


def test_unknown_institution_claim_is_422(client, outsider):
    response = claim(client, outsider, "00000000-0000-4000-8000-000000000000")

    assert response.status_code == 422
    assert error_fields(response) == {"institution_id"}


def test_claim_requires_student_role(client, person, university):
    admin = person(Role.institution_admin, org_ids=[university["id"]])

    response = claim(client, admin, university["id"])

    assert response.status_code == 403

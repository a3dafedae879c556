"""The whole transition table, allowed and forbidden moves, by role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from edulink.auth import Role
from internships.applications import TRANSITIONS, Party
from internships.models import ApplicationStatus
from tests.internships.helpers import (
    PROBLEM_JSON,
    insert_applications,
    move,
    open_opportunity,
    patch_opportunity,
)

PARTIES = [
    Party.STUDENT,
    Party.EMPLOYER_ADMIN,
    Party.SUPERVISOR,
    Party.INSTITUTION_ADMIN,
    Party.SYSTEM_ADMIN,
]
ALLOWED = [
    (source, target, party)
    for source, moves in TRANSITIONS.items()
    for target, rule in moves.items()
    for party in PARTIES
    if party in rule.by or party == Party.SYSTEM_ADMIN
]
# Spelled out, so a change to the table has to change this test too.
EXPECTED_ALLOWED = {
    ("APPLIED", "SHORTLISTED"): {"employer_admin"},
    ("APPLIED", "REJECTED"): {"employer_admin"},
    ("APPLIED", "WITHDRAWN"): {"student"},
    ("SHORTLISTED", "ACCEPTED"): {"employer_admin"},
    ("SHORTLISTED", "REJECTED"): {"employer_admin"},
    ("SHORTLISTED", "WITHDRAWN"): {"student"},
    ("ACCEPTED", "ACTIVE"): {"employer_admin"},
    ("ACCEPTED", "WITHDRAWN"): {"student"},
    ("ACTIVE", "COMPLETED"): {"employer_admin", "supervisor"},
    ("ACTIVE", "TERMINATED"): {"employer_admin"},
    ("COMPLETED", "CERTIFIED"): {"institution_admin"},
}


@dataclass
class Cast:
    """The people around one application, one per party."""

    by_party: dict[Party, Any]
    application_id: str


@pytest.fixture
def placement(client, world, person):
    """Make applications in a given state, each with its own cast."""
    response = patch_opportunity(
        client, world.employer_admin, world.opportunity["id"], {"capacity": 100}
    )
    assert response.status_code == 200, response.get_json()

    def make(status: str) -> Cast:
        student = person(Role.student)
        [application_id] = insert_applications(
            world.opportunity,
            status=status,
            institution_id=world.institution_id,
            student_user_id=student.user_id,
        )
        return Cast(
            {
                Party.STUDENT: student,
                Party.EMPLOYER_ADMIN: world.employer_admin,
                Party.SUPERVISOR: world.supervisor,
                Party.INSTITUTION_ADMIN: world.institution_admin,
                Party.SYSTEM_ADMIN: world.system_admin,
            },
            application_id,
        )

    return make


def test_table_matches_domain_rules():
    table = {
        (source.value, target.value): {party.value for party in rule.by}
        for source, moves in TRANSITIONS.items()
        for target, rule in moves.items()
    }

    assert table == EXPECTED_ALLOWED


def test_reasons_required_for_withdraw_and_terminate():
    needing = {
        (source.value, target.value)
        for source, moves in TRANSITIONS.items()
        for target, rule in moves.items()
        if rule.needs_reason
    }

    assert needing == {
        ("APPLIED", "WITHDRAWN"),
        ("SHORTLISTED", "WITHDRAWN"),
        ("ACCEPTED", "WITHDRAWN"),
        ("ACTIVE", "TERMINATED"),
    }


@pytest.mark.parametrize(
    ("source", "target", "party"),
    ALLOWED,
    ids=[f"{s}-{t}-{p}" for s, t, p in ALLOWED],
)
def test_allowed_move_succeeds(client, placement, source, target, party):
    cast = placement(source.value)

    response = move(
        client, cast.by_party[party], cast.application_id, target.value, reason="Fit"
    )

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == target.value


@pytest.mark.parametrize("source", list(ApplicationStatus), ids=str)
def test_forbidden_moves_rejected(client, placement, source):
    cast = placement(source.value)
    failures = []

    for target in ApplicationStatus:
        for party in PARTIES:
            if (source, target, party) in ALLOWED:
                continue
            response = move(
                client,
                cast.by_party[party],
                cast.application_id,
                target.value,
                reason="Fit",
            )
            in_table = target in TRANSITIONS.get(source, {})
            expected = 403 if in_table else 409
            body = response.get_json()
            if response.status_code != expected or "allowed" not in body:
                failures.append((target.value, party.value, response.status_code))

    assert failures == []


def test_conflict_lists_allowed_states_for_actor(client, placement, world):
    cast = placement("APPLIED")

    response = move(client, world.employer_admin, cast.application_id, "ACTIVE")

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["allowed"] == ["SHORTLISTED", "REJECTED"]


def test_forbidden_lists_actors_own_options(client, placement):
    cast = placement("APPLIED")

    response = move(
        client, cast.by_party[Party.STUDENT], cast.application_id, "SHORTLISTED"
    )

    assert response.status_code == 403
    assert response.get_json()["allowed"] == ["WITHDRAWN"]


def test_withdrawal_without_reason_is_422(client, placement):
    cast = placement("SHORTLISTED")

    response = move(
        client, cast.by_party[Party.STUDENT], cast.application_id, "WITHDRAWN"
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "reason"


def test_termination_without_reason_is_422(client, placement, world):
    cast = placement("ACTIVE")

    response = move(client, world.employer_admin, cast.application_id, "TERMINATED")

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "reason"


def test_activation_takes_opportunity_dates(client, placement, world):
    cast = placement("ACCEPTED")

    response = move(client, world.employer_admin, cast.application_id, "ACTIVE")

    body = response.get_json()
    assert body["start_date"] == world.opportunity["start_date"]
    assert body["end_date"] == world.opportunity["end_date"]


def test_activation_dates_out_of_order_422(client, placement, world):
    cast = placement("ACCEPTED")

    response = move(
        client,
        world.employer_admin,
        cast.application_id,
        "ACTIVE",
        start_date="2031-05-01",
        end_date="2031-04-01",
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "end_date"


def test_acceptance_sets_dates_and_supervisor(client, placement, world):
    cast = placement("SHORTLISTED")
    supervisor_id = str(uuid.uuid4())

    response = move(
        client,
        world.employer_admin,
        cast.application_id,
        "ACCEPTED",
        start_date="2031-05-01",
        end_date="2031-08-01",
        supervisor_user_id=supervisor_id,
    )

    body = response.get_json()
    assert body["start_date"] == "2031-05-01"
    assert body["supervisor_user_id"] == supervisor_id


def test_dates_on_shortlisting_are_422(client, placement, world):
    cast = placement("APPLIED")

    response = move(
        client,
        world.employer_admin,
        cast.application_id,
        "SHORTLISTED",
        start_date="2031-05-01",
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "start_date"


def test_assigned_supervisor_completes_placement(client, placement, world, person):
    cast = placement("ACCEPTED")
    outside_supervisor = person(Role.supervisor)
    move(
        client,
        world.employer_admin,
        cast.application_id,
        "ACTIVE",
        supervisor_user_id=str(outside_supervisor.user_id),
    )

    response = move(client, outside_supervisor, cast.application_id, "COMPLETED")

    assert response.status_code == 200, response.get_json()


def test_acceptance_beyond_capacity_conflicts(client, world, placement):
    first = placement("SHORTLISTED")
    second = placement("SHORTLISTED")
    response = patch_opportunity(
        client, world.employer_admin, world.opportunity["id"], {"capacity": 1}
    )
    assert response.status_code == 200, response.get_json()
    move(client, world.employer_admin, first.application_id, "ACCEPTED")

    response = move(client, world.employer_admin, second.application_id, "ACCEPTED")

    assert response.status_code == 409
    assert response.get_json()["capacity"] == 1


def test_second_current_placement_conflicts(client, world, person):
    student = person(Role.student)
    insert_applications(
        world.opportunity, status="ACCEPTED", student_user_id=student.user_id
    )
    other = open_opportunity(client, world.employer_admin, world.employer_id)
    [shortlisted] = insert_applications(
        other, status="SHORTLISTED", student_user_id=student.user_id
    )

    response = move(client, world.employer_admin, shortlisted, "ACCEPTED")

    assert response.status_code == 409

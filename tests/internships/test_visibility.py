"""Who sees which application: others get 404, never 403."""

from __future__ import annotations

import uuid

import pytest

from edulink.auth import Role
from tests.internships.helpers import apply, create_opportunity

# Fixed, because it is part of test ids that every pytest-xdist worker must
# collect identically.
STRANGER_ORG = str(uuid.UUID("00000000-0000-4000-8000-00000000517a"))


@pytest.fixture
def application_id(client, world) -> str:
    response = apply(client, world.student, world.opportunity["id"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def get(client, actor, application_id: str) -> int:
    return client.get(
        f"/api/v1/applications/{application_id}", headers=actor.headers
    ).status_code


@pytest.mark.parametrize(
    "party",
    ["student", "employer_admin", "supervisor", "institution_admin", "system_admin"],
)
def test_involved_parties_see_application(client, world, application_id, party):
    actor = getattr(world, party)

    assert get(client, actor, application_id) == 200


@pytest.mark.parametrize(
    ("role", "org_ids"),
    [
        (Role.student, []),
        (Role.employer_admin, [STRANGER_ORG]),
        (Role.supervisor, [STRANGER_ORG]),
        (Role.institution_admin, [STRANGER_ORG]),
        (Role.support_staff, []),
    ],
    ids=str,
)
def test_outsiders_get_404(client, person, application_id, role, org_ids):
    outsider = person(role, org_ids=org_ids)

    assert get(client, outsider, application_id) == 404


def test_unknown_application_is_404(client, world):
    assert get(client, world.system_admin, str(uuid.uuid4())) == 404


def test_outsider_move_is_404(client, person, application_id):
    outsider = person(Role.employer_admin, org_ids=[STRANGER_ORG])

    response = client.post(
        f"/api/v1/applications/{application_id}/transitions",
        json={"to": "SHORTLISTED"},
        headers={**outsider.headers, "If-Match": '"anything"'},
    )

    assert response.status_code == 404


def test_other_employer_list_is_404(client, person, world):
    outsider = person(Role.employer_admin, org_ids=[STRANGER_ORG])

    response = client.get(
        f"/api/v1/employers/{world.employer_id}/applications", headers=outsider.headers
    )

    assert response.status_code == 404


def test_other_institution_placements_404(client, person, world):
    outsider = person(Role.institution_admin, org_ids=[STRANGER_ORG])

    response = client.get(
        f"/api/v1/placements?institution_id={world.institution_id}",
        headers=outsider.headers,
    )

    assert response.status_code == 404


def test_draft_hidden_from_public(client, world):
    draft = create_opportunity(client, world.employer_admin, world.employer_id)

    response = client.get(f"/api/v1/opportunities/{draft['id']}")

    assert response.status_code == 404


def test_draft_visible_to_own_staff(client, world):
    draft = create_opportunity(client, world.employer_admin, world.employer_id)

    response = client.get(
        f"/api/v1/opportunities/{draft['id']}", headers=world.supervisor.headers
    )

    assert response.status_code == 200

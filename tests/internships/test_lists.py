"""Application lists: contents, paging, and constant statement and call counts."""

from __future__ import annotations

import pytest

from edulink.auth import Role
from edulink.testing.guard import count_queries
from internships.db import db
from tests.internships.helpers import insert_applications

MAX_STATEMENTS = 3
MAX_STUDENT_CALLS = 1


@pytest.fixture
def crowd(world, person):
    """101 applications to the world's opportunity, one of them by a known student."""
    student = person(Role.student)
    insert_applications(
        world.opportunity,
        100,
        status="ACCEPTED",
        institution_id=world.institution_id,
    )
    insert_applications(
        world.opportunity,
        status="ACTIVE",
        institution_id=world.institution_id,
        student_user_id=student.user_id,
    )
    return student


def list_urls(world) -> dict[str, str]:
    return {
        "employer": f"/api/v1/employers/{world.employer_id}/applications",
        "own": "/api/v1/applications",
        "placements": f"/api/v1/placements?institution_id={world.institution_id}",
    }


def viewer(world, crowd, name: str):
    return {
        "employer": world.employer_admin,
        "own": crowd,
        "placements": world.institution_admin,
    }[name]


@pytest.mark.parametrize("limit", [1, 100])
@pytest.mark.parametrize("name", ["employer", "own", "placements"])
def test_list_cost_is_constant(client, world, crowd, name, limit):
    url = list_urls(world)[name]
    separator = "&" if "?" in url else "?"
    headers = viewer(world, crowd, name).headers

    with count_queries(db.engine) as counter:
        response = client.get(f"{url}{separator}limit={limit}", headers=headers)

    assert response.status_code == 200, response.get_json()
    counter.assert_max(statements=MAX_STATEMENTS, calls=MAX_STUDENT_CALLS)


def test_employer_list_pages_full_size(client, world, crowd):
    response = client.get(
        f"/api/v1/employers/{world.employer_id}/applications?limit=100",
        headers=world.employer_admin.headers,
    )

    body = response.get_json()
    assert len(body["items"]) == 100
    assert body["next"] is not None
    assert 'rel="next"' in response.headers["Link"]


def test_employer_list_has_student_summary(client, world, crowd):
    response = client.get(
        f"/api/v1/employers/{world.employer_id}/applications?limit=1",
        headers=world.employer_admin.headers,
    )

    item = response.get_json()["items"][0]
    assert item["student"]["full_name"].startswith("Student")
    assert item["opportunity"]["title"] == world.opportunity["title"]


def test_employer_list_follows_cursor(client, world, crowd):
    url = f"/api/v1/employers/{world.employer_id}/applications?limit=60"
    first = client.get(url, headers=world.employer_admin.headers).get_json()

    second = client.get(
        f"{url}&cursor={first['next']}", headers=world.employer_admin.headers
    ).get_json()

    ids = [item["id"] for item in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 101
    assert second["next"] is None


def test_own_list_has_opportunity_and_employer(client, world, crowd):
    response = client.get("/api/v1/applications", headers=crowd.headers)

    [item] = response.get_json()["items"]
    assert item["opportunity"]["employer"]["name"] == "Savanna Labs"
    assert item["status"] == "ACTIVE"


def test_placements_exclude_plain_applications(client, world, crowd):
    insert_applications(world.opportunity, 3, institution_id=world.institution_id)

    response = client.get(
        f"/api/v1/placements?institution_id={world.institution_id}&limit=100",
        headers=world.institution_admin.headers,
    )

    statuses = {item["status"] for item in response.get_json()["items"]}
    assert statuses == {"ACCEPTED", "ACTIVE"}


def test_list_filtered_by_status(client, world, crowd):
    response = client.get(
        f"/api/v1/employers/{world.employer_id}/applications?status=ACTIVE",
        headers=world.employer_admin.headers,
    )

    assert len(response.get_json()["items"]) == 1


def test_cursor_from_other_list_is_400(client, world, crowd):
    first = client.get(
        f"/api/v1/employers/{world.employer_id}/applications?limit=1",
        headers=world.employer_admin.headers,
    ).get_json()

    response = client.get(
        f"/api/v1/placements?institution_id={world.institution_id}"
        f"&cursor={first['next']}",
        headers=world.institution_admin.headers,
    )

    assert response.status_code == 400

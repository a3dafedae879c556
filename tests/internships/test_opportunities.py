"""Employers, opportunities and the public search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edulink.auth import Role
from tests.internships.helpers import (
    PROBLEM_JSON,
    create_employer,
    create_opportunity,
    open_opportunity,
    opportunity_body,
    patch_opportunity,
)


@pytest.fixture
def staff(client, person):
    """A system admin, an active employer and its admin."""
    admin = person(Role.system_admin)
    employer = create_employer(client, admin)
    employer_admin = person(Role.employer_admin, org_ids=[employer["id"]])
    return admin, employer, employer_admin


def search(client, query: str = "", **headers: str):
    return client.get(f"/api/v1/opportunities?{query}", headers=headers)


def titles(response) -> list[str]:
    return [item["title"] for item in response.get_json()["items"]]


# Employers


def test_employer_admin_request_awaits_approval(client, person):
    requester = person(Role.employer_admin)

    response = client.post(
        "/api/v1/employers",
        json={"name": "Baobab Ltd", "contact_email": "hr@baobab.example"},
        headers=requester.headers,
    )

    assert response.status_code == 201
    assert response.get_json()["status"] == "requested"


def test_employer_status_set_by_system_admin(client, staff):
    _admin, employer, employer_admin = staff
    etag = client.get(
        f"/api/v1/employers/{employer['id']}", headers=employer_admin.headers
    ).headers["ETag"]

    response = client.patch(
        f"/api/v1/employers/{employer['id']}",
        json={"status": "rejected"},
        headers={**employer_admin.headers, "If-Match": etag},
    )

    assert response.status_code == 403


def test_duplicate_employer_name_conflicts(client, staff):
    admin, _employer, _employer_admin = staff

    response = client.post(
        "/api/v1/employers",
        json={"name": "savanna labs", "contact_email": "a@b.example"},
        headers=admin.headers,
    )

    assert response.status_code == 409


def test_unknown_employer_is_404(client, staff):
    admin, _employer, _employer_admin = staff

    response = client.get(
        "/api/v1/employers/00000000-0000-4000-8000-000000000000", headers=admin.headers
    )

    assert response.status_code == 404


# Opportunities


def test_new_opportunity_is_draft(client, staff):
    _admin, employer, employer_admin = staff

    body = create_opportunity(client, employer_admin, employer["id"])

    assert body["status"] == "DRAFT"
    assert body["skills"] == ["python", "sql"]
    assert body["stipend"] == {"amount": "25000.00", "currency": "KES"}


def test_dates_out_of_order_name_end_date(client, staff):
    _admin, employer, employer_admin = staff
    body = opportunity_body(
        employer["id"], start_date="2031-06-01", end_date="2031-05-01"
    )

    response = client.post(
        "/api/v1/opportunities", json=body, headers=employer_admin.headers
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "end_date"


def test_deadline_after_start_names_deadline(client, staff):
    _admin, employer, employer_admin = staff
    body = opportunity_body(
        employer["id"],
        start_date="2031-06-01",
        end_date="2031-09-01",
        deadline="2031-07-01T00:00:00Z",
    )

    response = client.post(
        "/api/v1/opportunities", json=body, headers=employer_admin.headers
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "deadline"


def test_other_employers_admin_cannot_create(client, staff, person):
    _admin, employer, _employer_admin = staff
    stranger = person(Role.employer_admin, org_ids=[])

    response = client.post(
        "/api/v1/opportunities",
        json=opportunity_body(employer["id"]),
        headers=stranger.headers,
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "employer_id"


def test_requested_employer_cannot_open(client, person):
    admin = person(Role.system_admin)
    employer = create_employer(client, admin, name="Pending Co", status="requested")
    employer_admin = person(Role.employer_admin, org_ids=[employer["id"]])
    draft = create_opportunity(client, employer_admin, employer["id"])

    response = patch_opportunity(
        client, employer_admin, draft["id"], {"status": "OPEN"}
    )

    assert response.status_code == 409
    assert response.get_json()["employer_status"] == "requested"


def test_open_with_past_deadline_is_422(client, staff):
    _admin, employer, employer_admin = staff
    past = datetime.now(UTC) - timedelta(days=1)
    draft = create_opportunity(
        client, employer_admin, employer["id"], deadline=past.isoformat()
    )

    response = patch_opportunity(
        client, employer_admin, draft["id"], {"status": "OPEN"}
    )

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "deadline"


def test_open_back_to_draft_conflicts(client, staff):
    _admin, employer, employer_admin = staff
    opened = open_opportunity(client, employer_admin, employer["id"])

    response = patch_opportunity(
        client, employer_admin, opened["id"], {"status": "DRAFT"}
    )

    assert response.status_code == 409
    assert response.get_json()["allowed"] == ["CLOSED"]


def test_supervisor_cannot_change_opportunity(client, staff, person):
    _admin, employer, employer_admin = staff
    opened = open_opportunity(client, employer_admin, employer["id"])
    supervisor = person(Role.supervisor, org_ids=[employer["id"]])

    response = patch_opportunity(client, supervisor, opened["id"], {"status": "CLOSED"})

    assert response.status_code == 403


def test_stale_opportunity_etag_is_412(client, staff):
    _admin, employer, employer_admin = staff
    draft = create_opportunity(client, employer_admin, employer["id"])
    stale = client.get(
        f"/api/v1/opportunities/{draft['id']}", headers=employer_admin.headers
    ).headers["ETag"]
    patch_opportunity(client, employer_admin, draft["id"], {"title": "Data intern"})

    response = client.patch(
        f"/api/v1/opportunities/{draft['id']}",
        json={"title": "Platform intern"},
        headers={**employer_admin.headers, "If-Match": stale},
    )

    assert response.status_code == 412
    assert response.mimetype == PROBLEM_JSON


# Public search


def test_search_is_anonymous_and_open_only(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(client, employer_admin, employer["id"], title="Open role")
    create_opportunity(client, employer_admin, employer["id"], title="Draft role")

    response = search(client)

    assert response.status_code == 200
    assert titles(response) == ["Open role"]


def test_search_full_text_matches_stems(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(
        client, employer_admin, employer["id"], title="Data analyst", description="x"
    )
    open_opportunity(
        client,
        employer_admin,
        employer["id"],
        title="Mobile developer",
        description="Develop Android applications",
    )

    response = search(client, "q=developing%20android")

    assert titles(response) == ["Mobile developer"]


def test_search_websearch_syntax_excludes(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(client, employer_admin, employer["id"], title="Python web intern")
    open_opportunity(client, employer_admin, employer["id"], title="Python data intern")

    response = search(client, "q=python%20-data")

    assert titles(response) == ["Python web intern"]


def test_search_filters_by_skills_overlap(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(client, employer_admin, employer["id"], title="A", skills=["Go"])
    open_opportunity(client, employer_admin, employer["id"], title="B", skills=["Rust"])
    open_opportunity(client, employer_admin, employer["id"], title="C", skills=["SQL"])

    response = search(client, "skills=go,RUST")

    assert sorted(titles(response)) == ["A", "B"]


def test_search_filters_by_location(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(
        client, employer_admin, employer["id"], title="A", location_type="remote"
    )
    open_opportunity(
        client, employer_admin, employer["id"], title="B", location="Kisumu"
    )

    assert titles(search(client, "location_type=remote")) == ["A"]
    assert titles(search(client, "location=kisu")) == ["B"]


def test_search_filters_by_deadline(client, staff):
    _admin, employer, employer_admin = staff
    soon = datetime.now(UTC) + timedelta(days=2)
    later = datetime.now(UTC) + timedelta(days=10)
    open_opportunity(
        client, employer_admin, employer["id"], title="Soon", deadline=soon.isoformat()
    )
    open_opportunity(
        client,
        employer_admin,
        employer["id"],
        title="Later",
        deadline=later.isoformat(),
    )
    middle = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert titles(search(client, f"deadline_before={middle}")) == ["Soon"]
    assert titles(search(client, f"deadline_after={middle}")) == ["Later"]


def test_search_orders_by_deadline_and_pages(client, staff):
    _admin, employer, employer_admin = staff
    for days in (9, 3, 6):
        deadline = datetime.now(UTC) + timedelta(days=days)
        open_opportunity(
            client,
            employer_admin,
            employer["id"],
            title=f"D{days}",
            deadline=deadline.isoformat(),
        )

    first = search(client, "limit=2").get_json()
    second = search(client, f"limit=2&cursor={first['next']}").get_json()

    assert [item["title"] for item in first["items"]] == ["D3", "D6"]
    assert [item["title"] for item in second["items"]] == ["D9"]


def test_search_is_publicly_cacheable(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(client, employer_admin, employer["id"])

    response = search(client)

    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert response.headers["ETag"]


def test_search_if_none_match_is_304(client, staff):
    _admin, employer, employer_admin = staff
    open_opportunity(client, employer_admin, employer["id"])
    etag = search(client).headers["ETag"]

    response = search(client, **{"If-None-Match": etag})

    assert response.status_code == 304
    assert response.data == b""


def test_search_etag_changes_with_content(client, staff):
    _admin, employer, employer_admin = staff
    opened = open_opportunity(client, employer_admin, employer["id"])
    before = search(client).headers["ETag"]

    patch_opportunity(client, employer_admin, opened["id"], {"title": "Renamed"})

    assert search(client).headers["ETag"] != before


def test_search_bad_filter_is_422(client):
    response = search(client, "location_type=moon")

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "location_type"

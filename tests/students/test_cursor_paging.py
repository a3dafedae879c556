"""Cursor pagination of list endpoints: complete walks, Link headers, bad cursors."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from edulink.auth import Role
from tests.students.helpers import (
    PROBLEM_JSON,
    create_institution,
    error_fields,
    insert_students,
    item_ids,
)

LINK_NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@pytest.fixture
def system_admin(person):
    return person(Role.system_admin)


def _walk(client, caller, path, limit, **filters) -> list[str]:
    """Follow ``next`` cursors from the first page to the last; return all ids."""
    ids: list[str] = []
    cursor = None
    for _ in range(1000):
        query = {"limit": limit, **filters}
        if cursor:
            query["cursor"] = cursor
        response = client.get(path, query_string=query, headers=caller.headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= limit
        ids += [item["id"] for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            return ids
    raise AssertionError("the walk did not end after 1000 pages")


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 11, 100])
def test_walk_returns_every_student_once(client, system_admin, limit):
    expected = [str(student_id) for student_id in insert_students(11)]

    ids = _walk(client, system_admin, "/api/v1/students", limit)

    assert ids == expected


@pytest.mark.parametrize("limit", [1, 4, 100])
def test_walk_breaks_timestamp_ties_by_id(client, system_admin, limit):
    inserted = insert_students(9, same_created_at=True)
    expected = sorted(str(student_id) for student_id in inserted)

    ids = _walk(client, system_admin, "/api/v1/students", limit)

    assert ids == expected


@pytest.mark.parametrize("limit", [1, 5, 100])
def test_walk_returns_every_institution_once(client, system_admin, limit):
    created = [
        create_institution(client, system_admin, f"Institute {number}")["id"]
        for number in range(6)
    ]

    ids = _walk(client, system_admin, "/api/v1/institutions", limit)

    assert ids == created


def test_walk_with_filter_keeps_filter(client, system_admin):
    created = [
        create_institution(
            client,
            system_admin,
            f"Institute {number}",
            status="suspended" if number % 2 else "active",
        )
        for number in range(6)
    ]

    ids = _walk(client, system_admin, "/api/v1/institutions", 1, status="active")

    assert ids == [body["id"] for body in created if body["status"] == "active"]


def test_walk_sees_rows_added_behind_cursor(client, system_admin):
    """Keyset pages skip nothing and repeat nothing when rows are added meanwhile."""
    first_batch = [str(student_id) for student_id in insert_students(3)]
    first = client.get("/api/v1/students?limit=2", headers=system_admin.headers)
    later = [str(student_id) for student_id in insert_students(2)]

    rest = client.get(
        "/api/v1/students",
        query_string={"limit": 100, "cursor": first.get_json()["next"]},
        headers=system_admin.headers,
    )

    assert item_ids(first) + item_ids(rest) == first_batch + later


def test_link_header_points_to_next_page(client, system_admin):
    insert_students(3)

    response = client.get("/api/v1/students?limit=2", headers=system_admin.headers)

    match = LINK_NEXT.match(response.headers["Link"])
    assert match is not None
    query = parse_qs(urlsplit(match["url"]).query)
    assert query["cursor"] == [response.get_json()["next"]]
    assert query["limit"] == ["2"]


def test_link_header_url_fetches_next_page(client, system_admin):
    expected = [str(student_id) for student_id in insert_students(3)]
    first = client.get("/api/v1/students?limit=2", headers=system_admin.headers)
    url = LINK_NEXT.match(first.headers["Link"])["url"]

    second = client.get(url, headers=system_admin.headers)

    assert item_ids(second) == expected[2:]
    assert "Link" not in second.headers


def test_link_header_absent_on_last_page(client, system_admin):
    insert_students(2)

    response = client.get("/api/v1/students?limit=2", headers=system_admin.headers)

    assert "Link" not in response.headers
    assert response.get_json()["next"] is None


def test_empty_list_has_no_link(client, system_admin):
    response = client.get("/api/v1/students", headers=system_admin.headers)

    assert response.get_json() == {"items": [], "next": None}
    assert "Link" not in response.headers


def test_default_limit_is_20(client, system_admin):
    insert_students(21)

    response = client.get("/api/v1/students", headers=system_admin.headers)

    assert len(response.get_json()["items"]) == 20
    assert response.get_json()["next"] is not None


# Bad cursors


def _next_cursor(client, caller, path) -> str:
    response = client.get(path, headers=caller.headers)
    cursor = response.get_json()["next"]
    assert cursor, response.get_json()
    return cursor


def _assert_cursor_rejected(response) -> None:
    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert error_fields(response) == {"cursor"}


def _flip(text: str, index: int) -> str:
    """Replace one base64url character of ``text`` by another valid one."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("position", ["payload", "signature"])
def test_tampered_cursor_is_400(client, system_admin, position):
    insert_students(3)
    cursor = _next_cursor(client, system_admin, "/api/v1/students?limit=1")
    payload, signature = cursor.split(".")
    if position == "payload":
        tampered = f"{_flip(payload, len(payload) // 2)}.{signature}"
    else:
        tampered = f"{payload}.{_flip(signature, 0)}"

    response = client.get(
        "/api/v1/students",
        query_string={"limit": 1, "cursor": tampered},
        headers=system_admin.headers,
    )

    _assert_cursor_rejected(response)


@pytest.mark.parametrize(
    "cursor", ["garbage", "a.b", "....", "%%%", "eyJzIjoxfQ.", "é.é"]
)
def test_garbage_cursor_is_400(client, system_admin, cursor):
    response = client.get(
        "/api/v1/students",
        query_string={"cursor": cursor},
        headers=system_admin.headers,
    )

    _assert_cursor_rejected(response)


def test_cursor_from_other_list_is_400(client, system_admin):
    for number in range(2):
        create_institution(client, system_admin, f"Institute {number}")
    insert_students(2)
    cursor = _next_cursor(client, system_admin, "/api/v1/institutions?limit=1")

    response = client.get(
        "/api/v1/students",
        query_string={"limit": 1, "cursor": cursor},
        headers=system_admin.headers,
    )

    _assert_cursor_rejected(response)


def test_cursor_from_other_filter_is_400(client, system_admin):
    for number in range(4):
        create_institution(client, system_admin, f"Institute {number}")
    cursor = _next_cursor(client, system_admin, "/api/v1/institutions?limit=1&q=Inst")

    response = client.get(
        "/api/v1/institutions",
        query_string={"limit": 1, "cursor": cursor, "q": "Institute 1"},
        headers=system_admin.headers,
    )

    _assert_cursor_rejected(response)


def test_cursor_from_other_caller_is_400(client, system_admin, person):
    insert_students(3)
    cursor = _next_cursor(client, system_admin, "/api/v1/students?limit=1")

    response = client.get(
        "/api/v1/students",
        query_string={"limit": 1, "cursor": cursor},
        headers=person(Role.system_admin).headers,
    )

    _assert_cursor_rejected(response)


def test_cursor_from_other_institution_is_400(client, system_admin):
    north = create_institution(client, system_admin, "North")
    south = create_institution(client, system_admin, "South")
    for name in ("Law", "Arts"):
        for institution in (north, south):
            client.post(
                f"/api/v1/institutions/{institution['id']}/departments",
                json={"name": name},
                headers=system_admin.headers,
            )
    cursor = _next_cursor(
        client, system_admin, f"/api/v1/institutions/{north['id']}/departments?limit=1"
    )

    response = client.get(
        f"/api/v1/institutions/{south['id']}/departments",
        query_string={"limit": 1, "cursor": cursor},
        headers=system_admin.headers,
    )

    _assert_cursor_rejected(response)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
def test_invalid_limit_is_422(client, system_admin, limit):
    response = client.get(
        "/api/v1/students", query_string={"limit": limit}, headers=system_admin.headers
    )

    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    assert error_fields(response) == {"limit"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/institutions",
        "/api/v1/students/me/claims",
    ],
)
def test_invalid_limit_on_other_lists(client, person, path):
    student = person(Role.student, email="s@mail.example.com")

    response = client.get(path, query_string={"limit": 101}, headers=student.headers)

    assert response.status_code == 422
    assert error_fields(response) == {"limit"}

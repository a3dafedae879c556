"""Student profiles: creation, reading with ETags, editing with If-Match."""

from __future__ import annotations

from edulink.auth import Role

PROFILE = {
    "full_name": "Amina Njoroge",
    "registration_number": "SCT-221-001/2024",
    "course": "BSc Computer Science",
    "year_of_study": 3,
    "skills": ["Python", "SQL", "python "],
}


def create_profile(client, student) -> dict:
    response = client.post("/api/v1/students/me", json=PROFILE, headers=student.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_profile_takes_email_from_token(client, person):
    student = person(Role.student, email="Amina@Uni.example.ac.ke")

    body = create_profile(client, student)

    assert body["email"] == "amina@uni.example.ac.ke"
    assert body["user_id"] == str(student.user_id)
    assert body["trust_level"] == 0
    assert body["verified"] is False


def test_create_profile_deduplicates_skills(client, person):
    student = person(Role.student, email="a@example.com")

    body = create_profile(client, student)

    assert body["skills"] == ["Python", "SQL"]


def test_create_profile_returns_location_and_etag(client, person):
    student = person(Role.student, email="a@example.com")

    response = client.post("/api/v1/students/me", json=PROFILE, headers=student.headers)

    location = response.headers["Location"]
    assert location.endswith(f"/api/v1/students/{response.json['id']}")
    assert response.headers["ETag"]


def test_create_profile_twice_conflicts(client, person):
    student = person(Role.student, email="a@example.com")
    create_profile(client, student)

    response = client.post("/api/v1/students/me", json=PROFILE, headers=student.headers)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_own_profile_missing_is_404(client, person):
    student = person(Role.student, email="a@example.com")

    response = client.get("/api/v1/students/me", headers=student.headers)

    assert response.status_code == 404


def test_get_with_matching_etag_is_304(client, person):
    student = person(Role.student, email="a@example.com")
    create_profile(client, student)
    etag = client.get("/api/v1/students/me", headers=student.headers).headers["ETag"]

    response = client.get(
        "/api/v1/students/me", headers={**student.headers, "If-None-Match": etag}
    )

    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.data == b""


def test_get_with_other_etag_is_200(client, person):
    student = person(Role.student, email="a@example.com")
    create_profile(client, student)

    response = client.get(
        "/api/v1/students/me", headers={**student.headers, "If-None-Match": '"stale"'}
    )

    assert response.status_code == 200


def test_patch_without_if_match_is_428(client, person):
    student = person(Role.student, email="a@example.com")
    create_profile(client, student)

    response = client.patch(
        "/api/v1/students/me", json={"course": "BSc Maths"}, headers=student.headers
    )

    assert response.status_code == 428
    assert "If-Match" in response.get_json()["detail"]


def test_patch_with_current_etag_updates(client, person):
    student = person(Role.student, email="a@example.com")
    etag = client.post(
        "/api/v1/students/me", json=PROFILE, headers=student.headers
    ).headers["ETag"]

    response = client.patch(
        "/api/v1/students/me",
        json={"course": "BSc Maths", "year_of_study": 4},
        headers={**student.headers, "If-Match": etag},
    )

    assert response.status_code == 200
    assert response.get_json()["course"] == "BSc Maths"
    assert response.get_json()["year_of_study"] == 4
    assert response.headers["ETag"] != etag


def test_patch_with_stale_etag_is_412(client, person):
    student = person(Role.student, email="a@example.com")
    etag = client.post(
        "/api/v1/students/me", json=PROFILE, headers=student.headers
    ).headers["ETag"]
    client.patch(
        "/api/v1/students/me",
        json={"course": "BSc Maths"},
        headers={**student.headers, "If-Match": etag},
    )

    response = client.patch(
        "/api/v1/students/me",
        json={"course": "BSc Physics"},
        headers={**student.headers, "If-Match": etag},
    )

    assert response.status_code == 412
    current = client.get("/api/v1/students/me", headers=student.headers).get_json()
    assert current["course"] == "BSc Maths"


def test_profile_endpoints_reject_other_roles(client, person):
    admin = person(Role.institution_admin)

    response = client.get("/api/v1/students/me", headers=admin.headers)

    assert response.status_code == 403


def test_profile_needs_a_token(client):
    response = client.get("/api/v1/students/me")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

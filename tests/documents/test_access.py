"""Who may request and read documents; everyone else gets 404."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from edulink.auth import Role
from tests.documents.helpers import World, report_body, request_document

Headers = Callable[[World], dict[str, str]]

PARTIES: dict[str, Headers] = {
    "the student": lambda w: w.baraka.headers,
    "the employer's admin": lambda w: w.employer_admin.headers,
    "the institution's admin": lambda w: w.institution_admin.headers,
    "a system admin": lambda w: w.system_admin.headers,
}


def _other_org(world: World, role: Role) -> dict[str, str]:
    return world.person(role, org_ids=[str(uuid.uuid4())]).headers


OUTSIDERS: dict[str, Headers] = {
    "another student": lambda w: w.amina.headers,
    "another employer's admin": lambda w: _other_org(w, Role.employer_admin),
    "another institution's admin": lambda w: _other_org(w, Role.institution_admin),
    "the employer's supervisor": lambda w: (
        w.person(Role.supervisor, org_ids=[w.employer_id]).headers
    ),
    "support staff": lambda w: w.person(Role.support_staff).headers,
    "a service": lambda w: {
        "Authorization": f"Bearer {w.tokens.service_token('internships')}"
    },
}


@pytest.fixture(scope="module")
def letter(
    documents_app: Flask, world: World, run_worker: Callable[[], None]
) -> dict[str, Any]:
    """Baraka's placement letter, rendered."""
    client = documents_app.test_client()
    response = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    )
    assert response.status_code == 202, response.get_json()
    run_worker()
    return response.get_json()


@pytest.mark.parametrize("who", PARTIES)
def test_parties_may_request_letter(
    client: FlaskClient, world: World, letter: dict[str, Any], who: str
) -> None:
    response = client.post(
        "/api/v1/documents",
        json={"kind": "placement_letter", "application_id": world.baraka_application},
        headers=PARTIES[who](world),
    )

    assert response.status_code == 200
    assert response.get_json()["id"] == letter["id"]


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_may_not_request_letter(
    client: FlaskClient, world: World, who: str
) -> None:
    response = client.post(
        "/api/v1/documents",
        json={"kind": "placement_letter", "application_id": world.baraka_application},
        headers=OUTSIDERS[who](world),
    )

    assert response.status_code == 404


@pytest.mark.parametrize("who", PARTIES)
def test_parties_may_read_document(
    client: FlaskClient, world: World, letter: dict[str, Any], who: str
) -> None:
    headers = PARTIES[who](world)
    metadata = client.get(f"/api/v1/documents/{letter['id']}", headers=headers)
    content = client.get(f"/api/v1/documents/{letter['id']}/content", headers=headers)

    assert metadata.status_code == 200
    assert content.status_code == 200
    assert content.data.startswith(b"%PDF-")


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_get_404_on_read(
    client: FlaskClient, world: World, letter: dict[str, Any], who: str
) -> None:
    headers = OUTSIDERS[who](world)
    metadata = client.get(f"/api/v1/documents/{letter['id']}", headers=headers)
    content = client.get(f"/api/v1/documents/{letter['id']}/content", headers=headers)
    listed = client.get("/api/v1/documents", headers=headers)

    assert metadata.status_code == 404
    assert content.status_code == 404
    assert letter["id"] not in [item["id"] for item in listed.get_json()["items"]]


def test_unknown_application_is_404(client: FlaskClient, world: World) -> None:
    response = request_document(
        client,
        world.system_admin,
        "placement_letter",
        application_id=str(uuid.uuid4()),
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    "who",
    ["the student", "the employer's admin", "another institution's admin"],
)
def test_report_is_for_institution_admins(
    client: FlaskClient, world: World, who: str
) -> None:
    headers = {**PARTIES, **OUTSIDERS}[who](world)
    response = client.post(
        "/api/v1/documents",
        json={"kind": "placement_report", **report_body(world)},
        headers=headers,
    )

    assert response.status_code == 404


@pytest.mark.parametrize("who", ["the student", "the institution's admin"])
def test_only_system_admins_revoke(
    client: FlaskClient, world: World, letter: dict[str, Any], who: str
) -> None:
    response = client.post(
        f"/api/v1/documents/{letter['id']}/revocation",
        json={"reason": "Issued by mistake."},
        headers=PARTIES[who](world),
    )

    assert response.status_code == 403


def test_anonymous_caller_gets_401(client: FlaskClient, letter: dict[str, Any]) -> None:
    response = client.get(f"/api/v1/documents/{letter['id']}")

    assert response.status_code == 401

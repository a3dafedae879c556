"""Public verification by tracking code and by uploaded file, revocation, ledger."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.documents.helpers import World, request_document


@pytest.fixture(scope="module")
def certificate(
    documents_app: Flask, world: World, run_worker: Callable[[], None]
) -> dict[str, Any]:
    """Amina's certificate, issued by the job of her CERTIFIED move, with its bytes."""
    run_worker()
    client = documents_app.test_client()
    items = client.get(
        "/api/v1/documents",
        query_string={"kind": "completion_certificate"},
        headers=world.amina.headers,
    ).get_json()["items"]
    assert len(items) == 1, items
    content = client.get(items[0]["links"]["content"], headers=world.amina.headers)
    return {**items[0], "content": content.data}


def _upload(client: FlaskClient, content: bytes) -> TestResponse:
    return client.post(
        "/api/v1/verify",
        data={"file": (io.BytesIO(content), "certificate.pdf")},
        content_type="multipart/form-data",
    )


def test_code_shows_valid_document(
    client: FlaskClient, certificate: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/verify/{certificate['tracking_code']}")
    body = response.get_json()

    assert response.status_code == 200
    assert body["kind"] == "completion_certificate"
    assert body["holder_name"] == "Amina Njoroge"
    assert body["issued_on"] == certificate["issued_at"][:10]
    assert body["status"] == "valid"
    assert body["valid"] is True
    assert body["sha256"] == certificate["sha256"]


def test_code_typed_in_lower_case_matches(
    client: FlaskClient, certificate: dict[str, Any]
) -> None:
    response = client.get(f"/api/v1/verify/{certificate['tracking_code'].lower()}")

    assert response.status_code == 200


@pytest.mark.parametrize("code", ["EDL-C-222222", "not-a-code", "EDL-C-0OIL11"])
def test_unknown_code_is_404(client: FlaskClient, code: str) -> None:
    response = client.get(f"/api/v1/verify/{code}")

    assert response.status_code == 404


def test_pending_document_is_not_verifiable(client: FlaskClient, world: World) -> None:
    pending = request_document(
        client,
        world.baraka,
        "placement_letter",
        application_id=world.baraka_application,
    ).get_json()
    response = client.get(f"/api/v1/verify/{pending['tracking_code']}")

    assert pending["status"] == "PENDING"
    assert response.status_code == 404


def test_upload_of_exact_bytes_is_valid(
    client: FlaskClient, certificate: dict[str, Any]
) -> None:
    response = _upload(client, certificate["content"])
    body = response.get_json()

    assert response.status_code == 200
    assert body["valid"] is True
    assert body["match"] is True
    assert body["document"]["tracking_code"] == certificate["tracking_code"]


@pytest.mark.parametrize("change", ["flip one byte", "append a byte", "drop a byte"])
def test_changed_bytes_fail(
    client: FlaskClient, certificate: dict[str, Any], change: str
) -> None:
    content = bytearray(certificate["content"])
    if change == "flip one byte":
        content[len(content) // 2] ^= 0x01
    elif change == "append a byte":
        content.append(0x0A)
    else:
        del content[-1]

    body = _upload(client, bytes(content)).get_json()

    assert body["valid"] is False
    assert body["match"] is False
    assert body["document"] is None


def test_upload_without_file_is_422(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/verify", data={}, content_type="multipart/form-data"
    )

    assert response.status_code == 422


def test_revocation_shows_in_verification(
    client: FlaskClient, world: World, certificate: dict[str, Any]
) -> None:
    revoked = client.post(
        f"/api/v1/documents/{certificate['id']}/revocation",
        json={"reason": "Certified in error."},
        headers=world.system_admin.headers,
    )
    by_code = client.get(f"/api/v1/verify/{certificate['tracking_code']}").get_json()
    by_upload = _upload(client, certificate["content"]).get_json()

    assert revoked.status_code == 200
    assert revoked.get_json()["revoked"] is True
    assert revoked.get_json()["revocation_reason"] == "Certified in error."
    assert by_code["status"] == "revoked"
    assert by_code["valid"] is False
    assert by_upload["match"] is True
    assert by_upload["valid"] is False


def test_second_revocation_conflicts(
    client: FlaskClient, world: World, certificate: dict[str, Any]
) -> None:
    response = client.post(
        f"/api/v1/documents/{certificate['id']}/revocation",
        json={"reason": "Again."},
        headers=world.system_admin.headers,
    )

    assert response.status_code == 409


def test_issue_and_revocation_are_ledger_events(
    client: FlaskClient,
    world: World,
    certificate: dict[str, Any],
    run_worker: Callable[[], None],
) -> None:
    run_worker()
    query = {"entity_type": "document", "entity_id": certificate["id"]}
    entries = client.get(
        "/api/v1/documents/ledger", query_string=query, headers=world.amina.headers
    ).get_json()["items"]
    chain = client.get(
        "/api/v1/documents/ledger/verify",
        query_string=query,
        headers=world.system_admin.headers,
    ).get_json()

    assert [entry["event_type"] for entry in entries] == [
        "document.issued",
        "document.revoked",
    ]
    assert entries[0]["new"]["sha256"] == certificate["sha256"]
    assert entries[1]["actor"] == str(world.system_admin.user_id)
    assert chain["valid"] is True

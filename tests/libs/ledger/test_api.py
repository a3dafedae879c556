"""``GET <prefix>/ledger`` and ``GET <prefix>/ledger/verify`` over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from edulink.auth import Role
from edulink.ledger import LedgerAppend
from edulink.testing.tokens import TokenFactory
from tests.libs.jobs.sample_app import build_app, ledger

LEDGER = "/api/v1/sample/ledger"


@pytest.fixture(scope="module")
def tokens() -> Iterator[TokenFactory]:
    with TokenFactory() as factory:
        yield factory


@pytest.fixture(scope="module")
def client(
    jobs_database_url: str, jobs_engine: object, tokens: TokenFactory
) -> FlaskClient:
    return build_app(jobs_database_url, jwks_file=tokens.jwks_path).test_client()


def bearer(tokens: TokenFactory, role: Role, subject: uuid.UUID | None = None) -> dict:
    return {"Authorization": f"Bearer {tokens.mint(role, subject=subject)}"}


def append_events(
    sessions: sessionmaker[Session],
    entity_type: str,
    entity_id: str,
    event_types: list[str],
    start: datetime,
) -> None:
    for number, event_type in enumerate(event_types):
        with sessions.begin() as session:
            ledger.append(
                session,
                LedgerAppend(
                    event_id=uuid.uuid4(),
                    entity_type=entity_type,
                    entity_id=entity_id,
                    event_type=event_type,
                    actor="user-1",
                    new={"n": number},
                    occurred_at=start + timedelta(minutes=number),
                ),
            )


def test_admin_pages_through_entity(
    client: FlaskClient, tokens: TokenFactory, sessions: sessionmaker[Session]
) -> None:
    entity_id = str(uuid.uuid4())
    start = datetime(2024, 3, 1, tzinfo=UTC)
    append_events(sessions, "application", entity_id, ["a.created"] * 3, start)
    headers = bearer(tokens, Role.system_admin)

    first = client.get(
        LEDGER,
        query_string={"entity_type": "application", "entity_id": entity_id, "limit": 2},
        headers=headers,
    )
    assert first.status_code == 200
    assert [item["seq"] for item in first.json["items"]] == [1, 2]
    assert 'rel="next"' in first.headers["Link"]

    second = client.get(
        LEDGER,
        query_string={
            "entity_type": "application",
            "entity_id": entity_id,
            "limit": 2,
            "cursor": first.json["next"],
        },
        headers=headers,
    )
    assert [item["seq"] for item in second.json["items"]] == [3]
    assert second.json["next"] is None


def test_filters_by_event_type_and_time(
    client: FlaskClient, tokens: TokenFactory, sessions: sessionmaker[Session]
) -> None:
    entity_id = str(uuid.uuid4())
    start = datetime(2024, 4, 1, tzinfo=UTC)
    kinds = ["a.created", "a.shortlisted", "a.accepted", "a.shortlisted"]
    append_events(sessions, "application", entity_id, kinds, start)
    headers = bearer(tokens, Role.system_admin)
    base = {"entity_type": "application", "entity_id": entity_id}

    by_type = client.get(
        LEDGER, query_string={**base, "event_type": "a.shortlisted"}, headers=headers
    )
    assert [item["seq"] for item in by_type.json["items"]] == [2, 4]

    window = {
        "since": (start + timedelta(minutes=1)).isoformat(),
        "until": (start + timedelta(minutes=3)).isoformat(),
    }
    by_time = client.get(LEDGER, query_string={**base, **window}, headers=headers)
    assert [item["seq"] for item in by_time.json["items"]] == [2, 3]


def test_owner_sees_own_entity_only(
    client: FlaskClient, tokens: TokenFactory, sessions: sessionmaker[Session]
) -> None:
    student = uuid.uuid4()
    start = datetime(2024, 5, 1, tzinfo=UTC)
    append_events(sessions, "student", str(student), ["student.verified"], start)
    headers = bearer(tokens, Role.student, subject=student)

    own = client.get(
        LEDGER,
        query_string={"entity_type": "student", "entity_id": str(student)},
        headers=headers,
    )
    assert own.status_code == 200
    assert len(own.json["items"]) == 1

    other = client.get(
        LEDGER,
        query_string={"entity_type": "student", "entity_id": str(uuid.uuid4())},
        headers=headers,
    )
    assert other.status_code == 404


def test_non_admin_must_name_entity(client: FlaskClient, tokens: TokenFactory) -> None:
    response = client.get(LEDGER, headers=bearer(tokens, Role.student, uuid.uuid4()))
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"


def test_anonymous_rejected(client: FlaskClient) -> None:
    assert client.get(LEDGER).status_code == 401


def test_verify_reports_first_broken_link(
    client: FlaskClient, tokens: TokenFactory, sessions: sessionmaker[Session]
) -> None:
    entity_id = str(uuid.uuid4())
    start = datetime(2024, 6, 1, tzinfo=UTC)
    append_events(sessions, "application", entity_id, ["a.created"] * 3, start)
    headers = bearer(tokens, Role.system_admin)
    query = {"entity_type": "application", "entity_id": entity_id}

    intact = client.get(f"{LEDGER}/verify", query_string=query, headers=headers)
    assert intact.json["valid"] is True
    assert intact.json["entries"] == 3
    assert intact.json["first_broken"] is None

    with sessions.begin() as session:
        session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        session.execute(
            sa.text(
                "UPDATE sample.ledger_entries SET actor = 'mallory' "
                "WHERE entity_id = :id AND seq = 3"
            ),
            {"id": entity_id},
        )

    broken = client.get(f"{LEDGER}/verify", query_string=query, headers=headers)
    assert broken.json["valid"] is False
    assert broken.json["first_broken"]["seq"] == 3

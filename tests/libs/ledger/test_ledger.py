"""The ledger against PostgreSQL: recording, appending, concurrency and tampering."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from edulink.jobs import Job, JobStatus, WorkerOptions
from edulink.ledger import LedgerAppend
from edulink.logs import bound_context
from tests.libs.jobs.sample_app import ledger, registry

RunBurst = Callable[..., None]


def entity() -> str:
    return str(uuid.uuid4())


def event(entity_id: str, number: int = 0) -> LedgerAppend:
    return LedgerAppend(
        event_id=uuid.uuid4(),
        entity_type="application",
        entity_id=entity_id,
        event_type="application.status_changed",
        actor="user-1",
        old={"n": number},
        new={"n": number + 1},
        occurred_at=datetime.now(UTC),
    )


def chain_of(sessions: sessionmaker[Session], entity_id: str) -> list[sa.Row]:
    table = ledger.table
    with sessions() as session:
        return list(
            session.execute(
                sa.select(table)
                .where(table.c.entity_id == entity_id)
                .order_by(table.c.seq)
            )
        )


def record(
    sessions: sessionmaker[Session], entity_id: str, count: int = 1
) -> list[Job]:
    with sessions.begin() as session:
        return [
            ledger.record_event(
                session,
                entity_type="application",
                entity_id=entity_id,
                event_type="application.status_changed",
                actor="user-1",
                old={"status": "APPLIED", "n": n},
                new={"status": "SHORTLISTED", "at": datetime(2024, 1, 1, tzinfo=UTC)},
            )
            for n in range(count)
        ]


def test_record_event_appends_through_job(
    sessions: sessionmaker[Session], run_burst: RunBurst
) -> None:
    entity_id = entity()
    with bound_context(request_id="req-ledger"):
        jobs = record(sessions, entity_id, count=3)

    run_burst(registry)

    entries = chain_of(sessions, entity_id)
    assert [entry.seq for entry in entries] == [1, 2, 3]
    assert entries[0].prev_hash is None
    assert entries[1].prev_hash == entries[0].hash
    assert entries[0].request_id == "req-ledger"
    assert entries[0].new == {"status": "SHORTLISTED", "at": "2024-01-01T00:00:00Z"}
    with sessions() as session:
        assert Job.fetch(jobs[0].id, session=session).get_status() is JobStatus.FINISHED
        assert ledger.verify(session, "application", entity_id).valid


def test_rolled_back_event_leaves_nothing(
    sessions: sessionmaker[Session], run_burst: RunBurst
) -> None:
    entity_id = entity()
    with sessions() as session:
        job = ledger.record_event(
            session,
            entity_type="application",
            entity_id=entity_id,
            event_type="application.created",
            actor="user-1",
        )
        session.rollback()

    run_burst(registry)

    assert chain_of(sessions, entity_id) == []
    with sessions() as session:
        assert Job.fetch_many([job.id], session=session) == [None]


def test_record_event_needs_actor(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(ValueError, match="actor"):
        ledger.record_event(
            session, entity_type="application", entity_id="x", event_type="created"
        )


def test_append_is_idempotent(sessions: sessionmaker[Session]) -> None:
    entity_id = entity()
    same = event(entity_id)
    with sessions.begin() as session:
        assert ledger.append(session, same)
    with sessions.begin() as session:
        assert not ledger.append(session, same)

    assert len(chain_of(sessions, entity_id)) == 1


def test_parallel_appends_never_fork(sessions: sessionmaker[Session]) -> None:
    entity_id = entity()

    def append_one(number: int) -> None:
        with sessions.begin() as session:
            ledger.append(session, event(entity_id, number))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append_one, range(64)))

    entries = chain_of(sessions, entity_id)
    assert [entry.seq for entry in entries] == list(range(1, 65))
    with sessions() as session:
        assert ledger.verify(session, "application", entity_id).valid


def test_parallel_jobs_keep_one_chain(
    sessions: sessionmaker[Session], run_burst: RunBurst
) -> None:
    entity_id = entity()
    record(sessions, entity_id, count=40)

    run_burst(
        registry,
        WorkerOptions(concurrency=8, heartbeat_timeout=5.0, dequeue_timeout=0.2),
    )

    entries = chain_of(sessions, entity_id)
    assert len(entries) == 40
    with sessions() as session:
        report = ledger.verify(session, "application", entity_id)
    assert report.valid
    assert report.entries == 40


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sample.ledger_entries SET actor = 'mallory' WHERE entity_id = :id",
        "DELETE FROM sample.ledger_entries WHERE entity_id = :id",
    ],
)
def test_stored_entries_reject_changes(
    sessions: sessionmaker[Session], statement: str
) -> None:
    entity_id = entity()
    with sessions.begin() as session:
        ledger.append(session, event(entity_id))

    with sessions.begin() as session, pytest.raises(DBAPIError, match="append-only"):
        session.execute(sa.text(statement), {"id": entity_id})


def tamper(sessions: sessionmaker[Session], statement: str, **params: object) -> None:
    """Run ``statement`` with triggers off, as a superuser editing rows by hand."""
    with sessions.begin() as session:
        session.execute(sa.text("SET LOCAL session_replication_role = replica"))
        session.execute(sa.text(statement), params)


def test_edited_row_detected(sessions: sessionmaker[Session]) -> None:
    entity_id = entity()
    for number in range(3):
        with sessions.begin() as session:
            ledger.append(session, event(entity_id, number))

    tamper(
        sessions,
        "UPDATE sample.ledger_entries SET new = '{\"n\": 99}' "
        "WHERE entity_id = :id AND seq = 2",
        id=entity_id,
    )

    with sessions() as session:
        report = ledger.verify(session, "application", entity_id)
    assert report.first_broken is not None
    assert report.first_broken.seq == 2
    assert "contents" in report.first_broken.reason


def test_deleted_row_detected(sessions: sessionmaker[Session]) -> None:
    entity_id = entity()
    for number in range(3):
        with sessions.begin() as session:
            ledger.append(session, event(entity_id, number))

    tamper(
        sessions,
        "DELETE FROM sample.ledger_entries WHERE entity_id = :id AND seq = 1",
        id=entity_id,
    )

    with sessions() as session:
        report = ledger.verify(session, "application", entity_id)
    assert report.first_broken is not None
    assert report.first_broken.seq == 2
    assert "sequence gap" in report.first_broken.reason

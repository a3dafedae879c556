"""Enqueue in the caller's transaction, and the RQ-style Queue and Job API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from edulink.jobs import (
    DomainEvent,
    InvalidJobOperation,
    InvalidPayload,
    Job,
    JobContract,
    JobStatus,
    NoSuchJobError,
    Queue,
    UnknownJobType,
    publish,
)
from edulink.jobs.queue import AT_FRONT_PRIORITY
from edulink.jobs.schema import QUEUE_TABLE
from edulink.logs import bound_context
from tests.libs.jobs.conftest import scalar
from tests.libs.jobs.sample_app import effects


class Greeting(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str
    times: int = 1


GREET = JobContract("enqueue_tests.greet", 1, Greeting, consumer=None)
PINNED = JobContract("enqueue_tests.pinned", 1, Greeting, consumer="elsewhere")


class Signup(pydantic.BaseModel):
    user: str


WELCOME = JobContract("welcome_tests.email", 1, Signup, consumer="welcome_mail")
AUDIT = JobContract("welcome_tests.audit", 1, Signup, consumer="welcome_audit")
SIGNED_UP = DomainEvent("welcome_tests.signed_up", Signup, (WELCOME, AUDIT))


def queued_rows(sessions: sessionmaker[Session], queue: str) -> int:
    sql = f"SELECT count(*) FROM {QUEUE_TABLE} WHERE entrypoint LIKE :prefix"
    return scalar(sessions, sql, prefix=f"{queue}:%")  # type: ignore[return-value]


def test_commit_keeps_job(sessions: sessionmaker[Session], queue_name: str) -> None:
    with sessions.begin() as session:
        session.execute(sa.insert(effects).values(key=queue_name, job_id="-"))
        job = Queue(queue_name, session=session).enqueue(GREET, "ada")

    with sessions() as session:
        assert Job.fetch(job.id, session=session).get_status() is JobStatus.QUEUED
    assert queued_rows(sessions, queue_name) == 1


def test_rollback_drops_job(sessions: sessionmaker[Session], queue_name: str) -> None:
    with sessions() as session:
        job = Queue(queue_name, session=session).enqueue(GREET, "ada")
        session.rollback()

    with sessions() as session, pytest.raises(NoSuchJobError):
        Job.fetch(job.id, session=session)
    assert queued_rows(sessions, queue_name) == 0


def test_exception_after_enqueue_drops_job(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    def change_then_fail() -> None:
        with sessions.begin() as session:
            session.execute(sa.insert(effects).values(key=queue_name, job_id="-"))
            Queue(queue_name, session=session).enqueue(GREET, name="ada")
            raise RuntimeError("business rule failed after the enqueue")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert queued_rows(sessions, queue_name) == 0
    count = scalar(
        sessions, "SELECT count(*) FROM sample.effects WHERE key = :k", k=queue_name
    )
    assert count == 0


def test_job_id_is_idempotency_key(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions.begin() as session:
        queue = Queue(queue_name, session=session)
        first = queue.enqueue(GREET, "ada", job_id=f"{queue_name}-once")
        second = queue.enqueue(GREET, "bob", job_id=f"{queue_name}-once")

    assert first.id == second.id
    assert queued_rows(sessions, queue_name) == 1
    with sessions() as session:
        assert Job.fetch(first.id, session=session).payload["name"] == "ada"


def test_enqueue_in_is_deferred(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions.begin() as session:
        later = Queue(queue_name, session=session).enqueue_in(
            timedelta(hours=1), GREET, "ada"
        )
        at = Queue(queue_name, session=session).enqueue_at(
            datetime.now(UTC) + timedelta(hours=2), "enqueue_tests.greet", name="bob"
        )

    with sessions() as session:
        assert Job.fetch(later.id, session=session).get_status() is JobStatus.DEFERRED
        assert Job.fetch(at.id, session=session).get_status() is JobStatus.DEFERRED


def test_at_front_gets_top_priority(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions.begin() as session:
        queue = Queue(queue_name, session=session)
        queue.enqueue(GREET, "normal")
        queue.enqueue(GREET, "urgent", at_front=True)
        queue.enqueue(GREET, "high", priority=10)

    sql = (
        f"SELECT payload FROM {QUEUE_TABLE} WHERE entrypoint LIKE :prefix "
        "ORDER BY priority DESC, id LIMIT 1"
    )
    first = scalar(sessions, sql, prefix=f"{queue_name}:%")
    assert b'"urgent"' in bytes(first)  # type: ignore[arg-type]
    top = scalar(sessions, f"SELECT max(priority) FROM {QUEUE_TABLE}")
    assert top == AT_FRONT_PRIORITY


def test_payload_validated_on_enqueue(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions() as session:
        queue = Queue(queue_name, session=session)
        with pytest.raises(InvalidPayload, match="times"):
            queue.enqueue(GREET, name="ada", times="many")
        with pytest.raises(InvalidPayload, match="colour"):
            queue.enqueue(GREET, name="ada", colour="red")
        with pytest.raises(TypeError, match="positional"):
            queue.enqueue(GREET, "ada", 2, 3)


def test_unknown_job_name_rejected(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions() as session, pytest.raises(UnknownJobType):
        Queue(queue_name, session=session).enqueue("no_such.job", name="ada")


def test_unsupported_rq_option_rejected(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions() as session, pytest.raises(TypeError, match="depends_on"):
        Queue(queue_name, session=session).enqueue(GREET, "ada", depends_on="x")


def test_contract_consumer_must_match_queue(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions() as session, pytest.raises(ValueError, match="elsewhere"):
        Queue(queue_name, session=session).enqueue(PINNED, "ada")


def test_request_context_stored_with_job(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with bound_context(request_id="req-123", actor="user-9"), sessions.begin() as s:
        job = Queue(queue_name, session=s).enqueue(GREET, "ada")

    with sessions() as session:
        stored = Job.fetch(job.id, session=session)
        assert stored.request_id == "req-123"
        assert stored.actor == "user-9"


def test_cancel_queued_job(sessions: sessionmaker[Session], queue_name: str) -> None:
    with sessions.begin() as session:
        job = Queue(queue_name, session=session).enqueue(GREET, "ada")
    with sessions.begin() as session:
        Job.fetch(job.id, session=session).cancel()

    with sessions() as session:
        assert Job.fetch(job.id, session=session).get_status() is JobStatus.CANCELED
    assert queued_rows(sessions, queue_name) == 0


def test_cancel_canceled_job_raises(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions.begin() as session:
        job = Queue(queue_name, session=session).enqueue(GREET, "ada")
        job.cancel()
    with sessions() as session, pytest.raises(InvalidJobOperation):
        Job.fetch(job.id, session=session).cancel()


def test_fetch_unknown_job_raises(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(NoSuchJobError):
        Job.fetch("no-such-job", session=session)


def test_publish_fans_out_in_transaction(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        jobs = publish(session, SIGNED_UP, {"user": "ada"})
    with sessions() as session:
        queues = sorted(Job.fetch(job.id, session=session).origin for job in jobs)
    assert queues == ["welcome_audit", "welcome_mail"]

    with sessions() as session:
        rolled_back = publish(session, SIGNED_UP, Signup(user="bob"))
        session.rollback()
    with sessions() as session:
        assert Job.fetch_many([j.id for j in rolled_back], session=session) == [
            None,
            None,
        ]


def test_publish_validates_event_payload(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(InvalidPayload, match="user"):
        publish(session, SIGNED_UP, {"name": "ada"})


def test_queue_count_and_fetch_job(
    sessions: sessionmaker[Session], queue_name: str
) -> None:
    with sessions.begin() as session:
        queue = Queue(queue_name, session=session)
        job = queue.enqueue(GREET, "ada")
        queue.enqueue(GREET, "bob")
        assert queue.count == 2
        assert queue.fetch_job(job.id) is not None
        assert Queue("other", session=session).fetch_job(job.id) is None

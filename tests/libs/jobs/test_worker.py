"""Worker behaviour in process: outcomes, retries, contracts and the run-once guard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from edulink.jobs import (
    Job,
    JobContext,
    JobContract,
    JobRegistry,
    JobStatus,
    PermanentJobError,
    Queue,
    Retry,
    get_current_job,
)
from edulink.jobs.schema import QUEUE_TABLE, job_table
from edulink.logs import actor_var, bound_context, job_id_var, request_id_var
from tests.libs.jobs.conftest import scalar


class Work(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    label: str


WORK = JobContract("worker_tests.work", 1, Work, consumer=None, retry=Retry(max=0))
FLAKY = JobContract(
    "worker_tests.flaky", 1, Work, consumer=None, retry=Retry(max=2, interval=0)
)
STRAY = JobContract("worker_tests.stray", 1, Work, consumer=None)
UNGUARDED = JobContract(
    "worker_tests.unguarded", 1, Work, consumer=None, retry=Retry(max=0), run_once=False
)


class WorkV1(pydantic.BaseModel):
    title: str


class WorkV2(pydantic.BaseModel):
    label: str
    source: str


UPGRADED_V1 = JobContract("worker_tests.upgraded", 1, WorkV1, consumer=None)
UPGRADED_V2 = JobContract(
    "worker_tests.upgraded",
    2,
    WorkV2,
    consumer=None,
    upgrades={1: lambda data: {"label": data["title"], "source": "v1"}},
)

RunBurst = Callable[..., None]


def enqueue(
    sessions: sessionmaker[Session], queue: str, contract: JobContract, **payload: Any
) -> Job:
    with sessions.begin() as session:
        return Queue(queue, session=session).enqueue_call(contract, kwargs=payload)


def fetch(sessions: sessionmaker[Session], job: Job) -> Job:
    with sessions() as session:
        fetched = Job.fetch(job.id, session=session)
        fetched.get_status()
        return fetched


def test_handler_runs_to_finished(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    seen: list[str] = []
    registry = JobRegistry(queue_name)
    registry.register(WORK, lambda payload, _context: seen.append(payload.label))
    job = enqueue(sessions, queue_name, WORK, label="one")

    run_burst(registry)

    done = fetch(sessions, job)
    assert seen == ["one"]
    assert done.get_status(refresh=False) is JobStatus.FINISHED
    assert done.attempts == 1
    assert done.started_at is not None
    assert done.ended_at is not None


def test_request_context_reaches_handler(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    seen: dict[str, Any] = {}

    def handler(_payload: Work, context: JobContext) -> None:
        seen.update(
            request_id=request_id_var.get(),
            actor=actor_var.get(),
            log_job_id=job_id_var.get(),
            context=context,
            current=get_current_job(),
        )

    registry = JobRegistry(queue_name)
    registry.register(WORK, handler)
    with bound_context(request_id="req-42", actor="user-7"):
        job = enqueue(sessions, queue_name, WORK, label="ctx")

    run_burst(registry)

    assert seen["request_id"] == "req-42"
    assert seen["actor"] == "user-7"
    assert seen["log_job_id"] == job.id
    assert seen["context"].id == job.id
    assert seen["current"] is seen["context"]


def test_failing_job_retried_then_held(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    calls: list[int] = []

    def handler(_payload: Work, context: JobContext) -> None:
        calls.append(context.attempt)
        raise RuntimeError("smtp is down")

    registry = JobRegistry(queue_name)
    registry.register(FLAKY, handler)
    job = enqueue(sessions, queue_name, FLAKY, label="mail")

    run_burst(registry)

    failed = fetch(sessions, job)
    assert calls == [1, 2, 3]
    assert failed.get_status(refresh=False) is JobStatus.FAILED
    assert failed.attempts == 3
    assert failed.error == "RuntimeError: smtp is down"
    assert "smtp is down" in (failed.exc_info or "")
    held = scalar(
        sessions,
        f"SELECT status::text FROM {QUEUE_TABLE} WHERE id = "
        "(SELECT queue_job_id FROM jobs.job WHERE id = :id)",
        id=job.id,
    )
    assert held == "failed"


def test_failed_job_requeued_and_finished(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    broken = {"yes": True}

    def handler(_payload: Work, _context: JobContext) -> None:
        if broken["yes"]:
            raise RuntimeError("still broken")

    registry = JobRegistry(queue_name)
    registry.register(FLAKY, handler)
    job = enqueue(sessions, queue_name, FLAKY, label="mail")
    run_burst(registry)

    with sessions.begin() as session:
        failed_registry = Queue(queue_name, session=session).failed_job_registry
        assert failed_registry.get_job_ids() == [job.id]
        assert failed_registry.count == 1
        failed_registry.requeue(job.id)
    assert fetch(sessions, job).get_status() is JobStatus.QUEUED

    broken["yes"] = False
    run_burst(registry)

    assert fetch(sessions, job).get_status() is JobStatus.FINISHED


def test_permanent_error_skips_retries(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    calls: list[int] = []

    def handler(_payload: Work, context: JobContext) -> None:
        calls.append(context.attempt)
        raise PermanentJobError("the application was deleted")

    registry = JobRegistry(queue_name)
    registry.register(FLAKY, handler)
    job = enqueue(sessions, queue_name, FLAKY, label="gone")

    run_burst(registry)

    failed = fetch(sessions, job)
    assert calls == [1]
    assert failed.get_status(refresh=False) is JobStatus.FAILED
    assert failed.error == "PermanentJobError: the application was deleted"


@pytest.mark.parametrize(
    ("column", "value", "error"),
    [
        ("payload", b'{"label": 5}', "label: Input should be a valid string"),
        ("payload", b"not json", "payload is not JSON"),
        (
            "headers",
            '{"edulink": {"id": "x", "v": 9, "retry": {"max": 3}}}',
            "version 9",
        ),
        ("headers", '{"other": 1}', "no edulink header"),
    ],
)
def test_invalid_job_fails_without_retry(
    sessions: sessionmaker[Session],
    queue_name: str,
    run_burst: RunBurst,
    column: str,
    value: object,
    error: str,
) -> None:
    calls: list[str] = []
    registry = JobRegistry(queue_name)
    registry.register(FLAKY, lambda payload, _context: calls.append(payload.label))
    job = enqueue(sessions, queue_name, FLAKY, label="ok")
    cast = "CAST(:value AS jsonb)" if column == "headers" else ":value"
    with sessions.begin() as session:
        session.execute(
            sa.text(
                f"UPDATE {QUEUE_TABLE} SET {column} = {cast} WHERE id = "
                "(SELECT queue_job_id FROM jobs.job WHERE id = :id)"
            ),
            {"value": value, "id": job.id},
        )

    run_burst(registry)

    failed = fetch(sessions, job)
    assert calls == []
    assert failed.get_status(refresh=False) is JobStatus.FAILED
    assert error in (failed.error or "")
    assert failed.attempts == 0


def test_unknown_job_type_held_failed(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    registry = JobRegistry(queue_name)
    registry.register(WORK, lambda _payload, _context: None)
    stray = enqueue(sessions, queue_name, STRAY, label="nobody handles me")

    run_burst(registry)

    failed = fetch(sessions, stray)
    assert failed.get_status(refresh=False) is JobStatus.FAILED
    assert "no handler for worker_tests.stray" in (failed.error or "")


def test_finished_job_not_run_twice(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    calls: list[str] = []
    registry = JobRegistry(queue_name)
    registry.register(WORK, lambda payload, _context: calls.append(payload.label))
    job = enqueue(sessions, queue_name, WORK, label="once")
    # As if a run had committed and its worker died before pgqueuer heard.
    with sessions.begin() as session:
        session.execute(
            sa.update(job_table)
            .where(job_table.c.id == job.id)
            .values(status="finished")
        )

    run_burst(registry)

    assert calls == []
    assert fetch(sessions, job).get_status(refresh=False) is JobStatus.FINISHED
    leftover = scalar(
        sessions,
        f"SELECT count(*) FROM {QUEUE_TABLE} WHERE dedupe_key = :id",
        id=job.id,
    )
    assert leftover == 0


def test_unguarded_job_finishes_from_log(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    seen: list[str] = []
    registry = JobRegistry(queue_name)
    registry.register(UNGUARDED, lambda payload, _context: seen.append(payload.label))
    job = enqueue(sessions, queue_name, UNGUARDED, label="idempotent")

    run_burst(registry)

    done = fetch(sessions, job)
    assert seen == ["idempotent"]
    assert done.get_status(refresh=False) is JobStatus.FINISHED
    assert done.ended_at is not None
    assert done.attempts == 0


def test_old_payload_version_upgraded(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    seen: list[WorkV2] = []
    registry = JobRegistry(queue_name)
    registry.register(UPGRADED_V2, lambda payload, _context: seen.append(payload))
    enqueue(sessions, queue_name, UPGRADED_V1, title="from an old release")

    run_burst(registry)

    assert seen == [WorkV2(label="from an old release", source="v1")]


def test_handler_writes_roll_back_on_error(
    sessions: sessionmaker[Session], queue_name: str, run_burst: RunBurst
) -> None:
    def handler(payload: Work, context: JobContext) -> None:
        context.session.execute(
            sa.text("INSERT INTO sample.effects (key, job_id) VALUES (:k, :j)"),
            {"k": payload.label, "j": context.id},
        )
        raise RuntimeError("after the write")

    registry = JobRegistry(queue_name)
    registry.register(WORK, handler)
    enqueue(sessions, queue_name, WORK, label=queue_name)

    run_burst(registry)

    written = scalar(
        sessions, "SELECT count(*) FROM sample.effects WHERE key = :k", k=queue_name
    )
    assert written == 0

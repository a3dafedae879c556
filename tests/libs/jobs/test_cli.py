"""``flask jobs ...`` commands and the admin health endpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from edulink.auth import Role
from edulink.jobs import Job, JobStatus, Queue
from edulink.jobs.health import queue_health
from edulink.testing.tokens import TokenFactory
from tests.libs.jobs.sample_app import QUEUE, RECORD, build_app


@pytest.fixture(scope="module")
def tokens() -> Iterator[TokenFactory]:
    with TokenFactory() as factory:
        yield factory


@pytest.fixture(scope="module")
def app(jobs_database_url: str, jobs_engine: object, tokens: TokenFactory) -> Flask:
    return build_app(jobs_database_url, jwks_file=tokens.jwks_path)


def failed_job(sessions: sessionmaker[Session]) -> Job:
    """Enqueue a job and hold it as failed, as a worker does after its last retry."""
    with sessions.begin() as session:
        job = Queue(QUEUE, session=session).enqueue(RECORD, key=uuid.uuid4().hex)
        session.execute(
            sa.text(
                "UPDATE jobs.pgqueuer SET status = 'failed' WHERE dedupe_key = :id"
            ),
            {"id": job.id},
        )
        session.execute(
            sa.text(
                "UPDATE jobs.job SET status = 'failed', error = 'RuntimeError: boom', "
                "ended_at = now() WHERE id = :id"
            ),
            {"id": job.id},
        )
    return job


def test_failed_lists_failed_jobs(app: Flask, sessions: sessionmaker[Session]) -> None:
    job = failed_job(sessions)

    result = app.test_cli_runner().invoke(args=["jobs", "failed"])

    assert result.exit_code == 0
    assert job.id in result.output
    assert "RuntimeError: boom" in result.output


def test_requeue_puts_job_back(app: Flask, sessions: sessionmaker[Session]) -> None:
    job = failed_job(sessions)

    result = app.test_cli_runner().invoke(args=["jobs", "requeue", job.id])

    assert result.exit_code == 0
    assert f"requeued {job.id}" in result.output
    with sessions.begin() as session:
        requeued = Job.fetch(job.id, session=session)
        assert requeued.get_status() is JobStatus.QUEUED
        requeued.cancel()


def test_requeue_unknown_job_fails(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["jobs", "requeue", "no-such-job"])
    assert result.exit_code == 1
    assert "not requeued" in result.output


def test_health_reports_backlog(app: Flask, sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        queue = Queue(QUEUE, session=session)
        waiting = queue.enqueue(RECORD, key="health-now")
        later = queue.enqueue_in(timedelta(hours=1), RECORD, key="health-later")

    result = app.test_cli_runner().invoke(args=["jobs", "health", "--json"])

    assert result.exit_code == 0
    body = json.loads(result.output)
    record = next(e for e in body["job_types"] if e["name"] == "sample.record")
    assert record["queued"] >= 1
    assert record["deferred"] >= 1
    assert record["oldest_queued_seconds"] >= 0
    with sessions.begin() as session:
        Job.fetch(waiting.id, session=session).cancel()
        Job.fetch(later.id, session=session).cancel()


def test_health_max_age_exit_status(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        waiting = Queue(QUEUE, session=session).enqueue(RECORD, key="old")

    runner = app.test_cli_runner()
    assert runner.invoke(args=["jobs", "health", "--max-age", "0"]).exit_code == 1
    assert runner.invoke(args=["jobs", "health", "--max-age", "3600"]).exit_code == 0
    with sessions.begin() as session:
        Job.fetch(waiting.id, session=session).cancel()


def test_health_counts_failed(sessions: sessionmaker[Session]) -> None:
    failed_job(sessions)
    with sessions() as session:
        entries = queue_health(session, queue=QUEUE)
    record = next(e for e in entries if e.name == "sample.record")
    assert record.failed >= 1


def test_health_endpoint_admin_only(
    app: Flask, tokens: TokenFactory, sessions: sessionmaker[Session]
) -> None:
    client = app.test_client()
    admin = {"Authorization": f"Bearer {tokens.mint(Role.system_admin)}"}
    student = {"Authorization": f"Bearer {tokens.mint(Role.student)}"}

    allowed = client.get("/api/v1/sample/jobs/health", headers=admin)
    assert allowed.status_code == 200
    assert "totals" in allowed.json
    assert "job_types" in allowed.json
    assert client.get("/api/v1/sample/jobs/health", headers=student).status_code == 403
    assert client.get("/api/v1/sample/jobs/health").status_code == 401

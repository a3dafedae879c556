"""Installing the job tables is idempotent and keeps queued jobs."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from edulink.jobs import Job, JobStatus, Queue
from edulink.jobs.schema import install
from tests.libs.jobs.conftest import scalar
from tests.libs.jobs.sample_app import QUEUE, RECORD


def test_install_twice_keeps_jobs(
    jobs_database_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        job = Queue(QUEUE, session=session).enqueue(RECORD, key="survives-install")

    install(jobs_database_url)

    with sessions.begin() as session:
        kept = Job.fetch(job.id, session=session)
        assert kept.get_status() is JobStatus.QUEUED
        kept.cancel()


def test_install_creates_both_table_sets(sessions: sessionmaker[Session]) -> None:
    tables = scalar(
        sessions,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) "
        "FROM information_schema.tables WHERE table_schema = 'jobs'",
    )
    assert tables == "job,pgqueuer,pgqueuer_log,pgqueuer_schedules,pgqueuer_statistics"

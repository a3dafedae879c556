"""RQ-style job handles: status, error, cancel and requeue.

A job's status comes from two rows. ``jobs.job`` stores the outcomes that the
worker decides (finished, failed, canceled). The pgqueuer row shows whether a
job that is not done yet waits (queued, or deferred while its start time is in
the future) or runs (started). Every method works in the caller's session:
changes take effect when the caller commits.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from edulink.jobs.errors import InvalidJobOperation, NoSuchJobError
from edulink.jobs.schema import (
    QUEUE_LOG_TABLE,
    QUEUE_SQL,
    QUEUE_TABLE,
    SessionDriver,
    job_table,
)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    DEFERRED = "deferred"
    CANCELED = "canceled"


# The error shown when pgqueuer's row vanished without the worker recording an
# outcome, e.g. after `pgq queue clear` or a manual DELETE.
QUEUE_ROW_MISSING = "the job's queue row was removed outside edulink.jobs"

# pgqueuer logs a job "successful" when its worker reports it done. That time
# is a finished job's end, and for a job without the run-once guard the log
# is the only record that it finished: writing it into jobs.job would cost
# every job another statement.
_JOB_COLUMNS = ", ".join(
    f"job.{column.name}" for column in job_table.columns if column.name != "ended_at"
)
_SELECT_JOBS = sa.text(
    f"""
    SELECT {_JOB_COLUMNS}, queued.status::text AS queue_status,
           queued.execute_after > now() AS waiting,
           COALESCE(job.ended_at, succeeded.at) AS ended_at,
           succeeded.at IS NOT NULL AS succeeded
    FROM {job_table.fullname} AS job
    LEFT JOIN {QUEUE_TABLE} AS queued ON queued.id = job.queue_job_id
    LEFT JOIN LATERAL (
        SELECT max(logged.created) AS at FROM {QUEUE_LOG_TABLE} AS logged
        WHERE logged.job_id = job.queue_job_id AND logged.status = 'successful'
    ) AS succeeded ON true
    WHERE job.id = ANY(:ids)
    """
)


class Job:
    """A job enqueued through :class:`edulink.jobs.Queue`, as RQ's ``Job``."""

    def __init__(self, id: str, *, session: Session) -> None:
        self.id = id
        self.session = session
        self._row: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    @classmethod
    def fetch(cls, id: str, *, session: Session) -> Job:
        """Return the job with ``id``, or raise NoSuchJobError."""
        job = cls(id, session=session)
        job.refresh()
        return job

    @classmethod
    def fetch_many(cls, ids: Sequence[str], *, session: Session) -> list[Job | None]:
        """Return the jobs in the order of ``ids``, None for each unknown id."""
        rows = {row["id"]: row for row in _select(session, ids)}
        jobs: list[Job | None] = []
        for job_id in ids:
            row = rows.get(job_id)
            if row is None:
                jobs.append(None)
                continue
            job = cls(job_id, session=session)
            job._row = row
            jobs.append(job)
        return jobs

    def refresh(self) -> None:
        rows = _select(self.session, [self.id])
        if not rows:
            raise NoSuchJobError(f"no job with id {self.id!r}")
        self._row = rows[0]

    @property
    def _data(self) -> dict[str, Any]:
        if self._row is None:
            self.refresh()
        assert self._row is not None
        return self._row

    def get_status(self, refresh: bool = True) -> JobStatus:
        if refresh:
            self.refresh()
        return _status_of(self._data)

    @property
    def name(self) -> str:
        return self._data["name"]

    # RQ calls these func_name and origin.
    func_name = name

    @property
    def origin(self) -> str:
        return self._data["queue"]

    queue_name = origin

    @property
    def version(self) -> int:
        return self._data["version"]

    @property
    def payload(self) -> dict[str, Any]:
        return self._data["payload"]

    kwargs = payload

    @property
    def attempts(self) -> int:
        """Handler runs that returned or raised.

        A run killed mid-way is not counted, nor, for a job without the
        run-once guard, a successful run.
        """
        return self._data["attempts"]

    @property
    def error(self) -> str | None:
        """The last error as ``Type: message``, kept until the job finishes."""
        data = self._data
        if data["error"] is None and _status_of(data) is JobStatus.FAILED:
            return QUEUE_ROW_MISSING
        return data["error"]

    @property
    def exc_info(self) -> str | None:
        """Traceback of the last error."""
        return self._data["exc_info"]

    @property
    def enqueued_at(self) -> datetime:
        return self._data["enqueued_at"]

    @property
    def started_at(self) -> datetime | None:
        return self._data["started_at"]

    @property
    def ended_at(self) -> datetime | None:
        """When the job finished, failed or was canceled."""
        return self._data["ended_at"]

    @property
    def request_id(self) -> str | None:
        return self._data["request_id"]

    @property
    def actor(self) -> str | None:
        return self._data["actor"]

    @property
    def is_queued(self) -> bool:
        return self.get_status() is JobStatus.QUEUED

    @property
    def is_started(self) -> bool:
        return self.get_status() is JobStatus.STARTED

    @property
    def is_deferred(self) -> bool:
        return self.get_status() is JobStatus.DEFERRED

    @property
    def is_finished(self) -> bool:
        return self.get_status() is JobStatus.FINISHED

    @property
    def is_failed(self) -> bool:
        return self.get_status() is JobStatus.FAILED

    @property
    def is_canceled(self) -> bool:
        return self.get_status() is JobStatus.CANCELED

    def cancel(self) -> None:
        """Take a waiting or failed job off the queue for good.

        Raises InvalidJobOperation for a job that is running, finished or
        canceled: a running handler cannot be interrupted.
        """
        state = self.session.execute(
            sa.select(job_table.c.status, job_table.c.queue_job_id)
            .where(job_table.c.id == self.id)
            .with_for_update()
        ).first()
        if state is None:
            raise NoSuchJobError(f"no job with id {self.id!r}")
        if state.status in (JobStatus.FINISHED, JobStatus.CANCELED):
            raise InvalidJobOperation(
                f"job {self.id} is {state.status} and cannot be canceled"
            )

        removed = self.session.execute(
            _CANCEL_QUEUED, {"id": state.queue_job_id}
        ).first()
        if (
            removed is None
            and _queue_status(self.session, state.queue_job_id) == "picked"
        ):
            raise InvalidJobOperation(
                f"job {self.id} is running and cannot be canceled; "
                "it will finish or fail"
            )

        self.session.execute(
            sa.update(job_table)
            .where(job_table.c.id == self.id)
            .values(status=JobStatus.CANCELED.value, ended_at=sa.func.now())
        )
        self._row = None

    def requeue(self) -> None:
        """Put a failed job back on the queue with a fresh retry budget."""
        if not requeue_jobs(self.session, [self.id]):
            raise InvalidJobOperation(
                f"job {self.id} is not held as failed, so it cannot be requeued"
            )
        self._row = None


_CANCEL_QUEUED = sa.text(
    f"""
    WITH removed AS (
        DELETE FROM {QUEUE_TABLE}
        WHERE id = :id AND status IN ('queued', 'failed')
        RETURNING id, entrypoint, priority
    )
    INSERT INTO {QUEUE_LOG_TABLE} (job_id, status, entrypoint, priority)
    SELECT id, 'canceled', entrypoint, priority FROM removed
    RETURNING job_id
    """
)


def requeue_jobs(session: Session, ids: Sequence[str]) -> list[str]:
    """Requeue the failed jobs among ``ids`` and return the ids requeued.

    Only jobs whose queue row pgqueuer holds as failed qualify: a job whose
    worker has recorded the failure but not yet released the row is skipped.
    """
    rows = session.execute(
        sa.text(
            f"""
            UPDATE {job_table.fullname} AS job
            SET status = 'queued', ended_at = NULL
            FROM {QUEUE_TABLE} AS queued
            WHERE job.id = ANY(:ids)
              AND queued.id = job.queue_job_id
              AND queued.status = 'failed'
            RETURNING job.id, job.queue_job_id
            """
        ),
        {"ids": list(ids)},
    ).all()
    if rows:
        SessionDriver(session).fetch(
            QUEUE_SQL.build_requeue_jobs_query(), [row.queue_job_id for row in rows]
        )
    return [row.id for row in rows]


def failed_job_ids(session: Session, *, queue: str | None, limit: int) -> list[str]:
    """Return ids of failed jobs, most recent failure first."""
    statement = (
        sa.select(job_table.c.id)
        .where(job_table.c.status == JobStatus.FAILED.value)
        .order_by(job_table.c.ended_at.desc().nulls_last(), job_table.c.id)
        .limit(limit)
    )
    if queue is not None:
        statement = statement.where(job_table.c.queue == queue)
    return list(session.execute(statement).scalars())


class FailedJobRegistry:
    """Failed jobs of one queue, as RQ's ``queue.failed_job_registry``."""

    def __init__(self, queue: str, *, session: Session) -> None:
        self.queue = queue
        self.session = session

    def get_job_ids(self, limit: int = 100) -> list[str]:
        return failed_job_ids(self.session, queue=self.queue, limit=limit)

    @property
    def count(self) -> int:
        statement = sa.select(sa.func.count()).where(
            job_table.c.queue == self.queue,
            job_table.c.status == JobStatus.FAILED.value,
        )
        return self.session.execute(statement).scalar_one()

    def requeue(self, job_id: str) -> Job:
        job = Job(job_id, session=self.session)
        job.requeue()
        return job


def _select(session: Session, ids: Sequence[str]) -> list[dict[str, Any]]:
    result = session.execute(_SELECT_JOBS, {"ids": list(ids)})
    return [dict(row) for row in result.mappings()]


def _queue_status(session: Session, queue_job_id: int) -> str | None:
    return session.execute(
        sa.text(f"SELECT status::text FROM {QUEUE_TABLE} WHERE id = :id"),
        {"id": queue_job_id},
    ).scalar()


def _status_of(data: dict[str, Any]) -> JobStatus:
    stored = data["status"]
    if stored in (JobStatus.FINISHED, JobStatus.CANCELED):
        return JobStatus(stored)

    queue_status = data["queue_status"]
    if queue_status is None and data["succeeded"] and stored == JobStatus.QUEUED:
        return JobStatus.FINISHED
    if stored == JobStatus.FAILED or queue_status in (None, "failed"):
        return JobStatus.FAILED
    if queue_status == "picked":
        return JobStatus.STARTED
    if data["waiting"]:
        return JobStatus.DEFERRED
    return JobStatus.QUEUED

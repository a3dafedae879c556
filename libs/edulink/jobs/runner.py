"""Run one job in a worker thread and decide what happens to it next.

The handler runs in a transaction that first marks the job finished in
``jobs.job``. The mark commits with the handler's writes or not at all, so a
job that runs again (its worker died before pgqueuer learned the outcome)
finds the mark and skips the handler: its database effects happen once.
"""

from __future__ import annotations

import enum
import json
import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import pydantic
import sqlalchemy as sa
from flask import Flask
from pgqueuer.domain.models import Job as QueuedJob
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from edulink.jobs.errors import InvalidPayload, PermanentJobError
from edulink.jobs.queue import HEADER
from edulink.jobs.registry import (
    JobContext,
    JobRegistry,
    Registration,
    bind_current_job,
    unbind_current_job,
)
from edulink.jobs.retry import Retry
from edulink.jobs.schema import job_table
from edulink.logs import bound_context

log = logging.getLogger(__name__)

# Tracebacks beyond this many characters keep their end, where the error is.
MAX_TRACEBACK_CHARS = 20_000

# Marks the job finished at the start of its handler's transaction, and turns
# off the WAL flush wait for that transaction: pgqueuer's acknowledgement
# commits synchronously afterwards, and WAL is flushed in order, so an
# acknowledged job's transaction is durable. A crash before the
# acknowledgement loses both and the job runs again.
_CLAIM = f"""
    WITH async_commit AS (
        SELECT set_config('synchronous_commit', 'off', true) AS value
    )
    UPDATE {job_table.fullname}
    SET status = 'finished', attempts = attempts + 1, started_at = now(),
        error = NULL, exc_info = NULL
    WHERE queue_job_id = %(qid)s AND status = 'queued'
      AND EXISTS (SELECT FROM async_commit)
    RETURNING id
"""


def _claim(session: Session, queue_job_id: int) -> bool:
    """Run the claim on the session's psycopg connection directly.

    SQLAlchemy's statement execution would add its CPU time to every job.
    """
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, {"qid": queue_job_id})
        return cursor.fetchone() is not None


class Outcome(enum.Enum):
    FINISHED = "finished"
    SKIPPED = "skipped"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    delay: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class Envelope:
    """edulink's metadata in the pgqueuer job's headers."""

    job_id: str
    version: int
    request_id: str | None
    actor: str | None
    retry: Retry

    @classmethod
    def of(cls, job: QueuedJob) -> Envelope:
        section = job.header_section(HEADER)
        if section is None:
            raise InvalidPayload(
                "the job has no edulink header, so it was not enqueued through "
                "edulink.jobs"
            )
        try:
            return cls(
                job_id=str(section["id"]),
                version=section["v"],  # type: ignore[arg-type]
                request_id=section.get("request_id"),  # type: ignore[arg-type]
                actor=section.get("actor"),  # type: ignore[arg-type]
                retry=Retry.from_json(section["retry"]),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidPayload(
                f"the job's edulink header is invalid: {error!r}"
            ) from None


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class JobRunner:
    """Runs pgqueuer jobs of one registry with the service's sessions. Thread-safe."""

    def __init__(
        self,
        registry: JobRegistry,
        sessions: sessionmaker[Session],
        *,
        app: Flask | None = None,
    ) -> None:
        self._registry = registry
        self._sessions = sessions
        self._app = app

    def run(self, job: QueuedJob) -> Result:
        registration = self._registry.lookup(job.entrypoint)
        try:
            envelope = Envelope.of(job)
        except InvalidPayload as error:
            return self._give_up(job, registration, error)

        with (
            bound_context(
                request_id=envelope.request_id,
                job_id=envelope.job_id,
                actor=envelope.actor,
            ),
            self._app_context(),
        ):
            try:
                payload = registration.contract.load(envelope.version, _decode(job))
            except InvalidPayload as error:
                return self._give_up(job, registration, error)
            return self._execute(job, envelope, registration, payload)

    def _execute(
        self,
        job: QueuedJob,
        envelope: Envelope,
        registration: Registration,
        payload: pydantic.BaseModel,
    ) -> Result:
        started = time.perf_counter()
        try:
            outcome = self._run_guarded(job, envelope, registration, payload)
        except PermanentJobError as error:
            return self._give_up(job, registration, error)
        except Exception as error:
            return self._after_error(job, envelope, registration, error)

        if outcome is Outcome.FINISHED:
            log.info(
                "job %s (%s) finished in %.1f ms",
                envelope.job_id,
                registration.contract.name,
                (time.perf_counter() - started) * 1000,
            )
        return Result(outcome)

    def _run_guarded(
        self,
        job: QueuedJob,
        envelope: Envelope,
        registration: Registration,
        payload: pydantic.BaseModel,
    ) -> Outcome:
        with self._sessions() as session, session.begin():
            run_once = registration.contract.run_once
            if run_once and not _claim(session, job.id):
                return self._unclaimed(session, job, envelope)

            context = JobContext(
                id=envelope.job_id,
                name=registration.contract.name,
                queue=self._registry.queue,
                attempt=job.attempts + 1,
                request_id=envelope.request_id,
                actor=envelope.actor,
                session=session,
            )
            token = bind_current_job(context)
            try:
                registration.handler(payload, context)
            finally:
                unbind_current_job(token)
        return Outcome.FINISHED

    def _unclaimed(
        self, session: Session, job: QueuedJob, envelope: Envelope
    ) -> Outcome:
        """Decide about a job that is not queued: it ran, was canceled or failed."""
        status = session.execute(
            sa.select(job_table.c.status).where(job_table.c.queue_job_id == job.id)
        ).scalar()
        if status == "failed":
            log.warning("job %s was recorded as failed already", envelope.job_id)
            return Outcome.FAILED
        if status is None:
            raise PermanentJobError(f"no jobs.job row for queue job {job.id}")
        log.info(
            "job %s is %s already, so its handler is skipped", envelope.job_id, status
        )
        return Outcome.SKIPPED

    def _after_error(
        self,
        job: QueuedJob,
        envelope: Envelope,
        registration: Registration,
        error: Exception,
    ) -> Result:
        retries_done = job.attempts
        if retries_done >= envelope.retry.max:
            return self._give_up(job, registration, error)

        delay = envelope.retry.delay(retries_done + 1)
        self._record_error(job, error, final=False)
        log.warning(
            "job %s (%s) failed on attempt %d of %d, retrying in %.1f s: %s",
            envelope.job_id,
            registration.contract.name,
            retries_done + 1,
            envelope.retry.max + 1,
            delay,
            describe(error),
        )
        return Result(Outcome.RETRY, delay=delay, error=describe(error))

    def _give_up(
        self, job: QueuedJob, registration: Registration, error: Exception
    ) -> Result:
        self._record_error(job, error, final=True)
        log.error(
            "job %s (queue id %d) failed permanently and is held as failed: %s",
            registration.contract.name,
            job.id,
            describe(error),
            exc_info=None if isinstance(error, InvalidPayload) else error,
        )
        return Result(Outcome.FAILED, error=describe(error))

    def _record_error(self, job: QueuedJob, error: Exception, *, final: bool) -> None:
        ran = not isinstance(error, InvalidPayload)
        values: dict[str, Any] = {
            "attempts": job_table.c.attempts + (1 if ran else 0),
            "error": describe(error),
            "exc_info": _traceback_of(error) if ran else None,
        }
        if final:
            values.update(status="failed", ended_at=sa.func.now())
        statement = (
            sa.update(job_table)
            .where(job_table.c.queue_job_id == job.id, job_table.c.status == "queued")
            .values(**values)
        )
        try:
            with self._sessions() as session, session.begin():
                session.execute(statement)
        except SQLAlchemyError:
            # pgqueuer still retries the job or keeps it as failed; only the error text
            # is lost.
            log.exception("could not record the error of queue job %d", job.id)

    @contextmanager
    def _app_context(self) -> Iterator[None]:
        with self._app.app_context() if self._app is not None else nullcontext():
            yield


def _decode(job: QueuedJob) -> Any:
    if job.payload is None:
        raise InvalidPayload("the job has no payload")
    try:
        return json.loads(job.payload)
    except ValueError as error:
        raise InvalidPayload(f"the job's payload is not JSON: {error}") from None


def _traceback_of(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    return text[-MAX_TRACEBACK_CHARS:]

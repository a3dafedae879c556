"""Enqueue jobs in the caller's transaction, with RQ's ``Queue`` interface.

A job is two rows written through the caller's SQLAlchemy session: pgqueuer's
queue row and a ``jobs.job`` row. Both commit or roll back with the business
change. Workers are woken by pgqueuer's NOTIFY, which PostgreSQL delivers only
on commit, so a worker never dequeues a job whose transaction is still open.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import sqlalchemy as sa
from pgqueuer.adapters.persistence.queries import SyncQueries
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from edulink.jobs.contracts import (
    UNSUPPORTED_RQ_OPTIONS,
    DomainEvent,
    JobContract,
    check_queue_name,
    resolve,
)
from edulink.jobs.job import FailedJobRegistry, Job, JobStatus
from edulink.jobs.retry import Retry
from edulink.jobs.schema import (
    QUEUE_LOG_TABLE,
    QUEUE_SQL,
    QUEUE_TABLE,
    SessionDriver,
    job_table,
)
from edulink.logs import actor_var, request_id_var

# pgqueuer's priority is a PostgreSQL integer and higher values run first.
AT_FRONT_PRIORITY = 2**31 - 1
MAX_PRIORITY = 1_000_000

# Name of the pgqueuer header section that carries edulink's job metadata.
HEADER = "edulink"

JobRef = JobContract | str | Callable[..., Any]


def entrypoint_of(queue: str, job_name: str) -> str:
    """Return the pgqueuer entrypoint of a job type on a queue: ``queue:name``."""
    return f"{queue}:{job_name}"


@dataclass(frozen=True)
class JobSpec:
    """One job to insert: everything enqueue decided before touching the database."""

    contract: JobContract
    queue: str
    payload: pydantic.BaseModel
    job_id: str
    priority: int = 0
    delay: timedelta = timedelta(0)
    retry: Retry | None = None

    def headers(self) -> dict[str, Any]:
        retry = self.retry or self.contract.retry
        return {
            HEADER: {
                "id": self.job_id,
                "v": self.contract.version,
                "request_id": request_id_var.get(),
                "actor": actor_var.get(),
                "retry": retry.to_json(),
            }
        }


class Queue:
    """A named queue bound to a session, as RQ's ``Queue(name, connection=...)``.

    The name is the consuming service, whose worker runs the jobs. Nothing is
    committed here: the caller's transaction decides.
    """

    def __init__(self, name: str = "default", *, session: Session) -> None:
        self.name = check_queue_name(name)
        self.session = session

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    def enqueue(self, f: JobRef, *args: Any, **kwargs: Any) -> Job:
        """Enqueue job ``f`` (contract, job name or registered handler).

        Positional and keyword arguments form the payload, except the options
        ``job_id``, ``retry``, ``at_front`` and ``priority``. Use
        :meth:`enqueue_call` when a payload field has one of those names.
        """
        contract = resolve(f)
        options = _pop_options(contract, kwargs)
        return self.enqueue_call(contract, args=args, kwargs=kwargs, **options)

    def enqueue_call(
        self,
        func: JobRef,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        retry: Retry | None = None,
        at_front: bool = False,
        priority: int = 0,
        delay: timedelta = timedelta(0),
    ) -> Job:
        """Enqueue with payload and options apart, as RQ's ``enqueue_call``."""
        contract = resolve(func)
        spec = JobSpec(
            contract=contract,
            queue=self._queue_for(contract),
            payload=contract.build(args or (), kwargs or {}),
            job_id=_check_job_id(job_id),
            priority=_priority(at_front, priority),
            delay=max(delay, timedelta(0)),
            retry=retry,
        )
        return insert_jobs(self.session, [spec])[0]

    def enqueue_in(
        self, time_delta: timedelta, func: JobRef, *args: Any, **kwargs: Any
    ) -> Job:
        """Enqueue a job that starts no earlier than ``time_delta`` from now."""
        contract = resolve(func)
        options = _pop_options(contract, kwargs)
        return self.enqueue_call(
            contract, args=args, kwargs=kwargs, delay=time_delta, **options
        )

    def enqueue_at(
        self, datetime_: datetime, func: JobRef, *args: Any, **kwargs: Any
    ) -> Job:
        """Enqueue a job that starts no earlier than ``datetime_`` (timezone-aware)."""
        if datetime_.tzinfo is None:
            raise ValueError("enqueue_at needs a timezone-aware datetime")
        return self.enqueue_in(datetime_ - datetime.now(UTC), func, *args, **kwargs)

    def fetch_job(self, job_id: str) -> Job | None:
        job = Job.fetch_many([job_id], session=self.session)[0]
        if job is not None and job.origin != self.name:
            return None
        return job

    @property
    def count(self) -> int:
        """Jobs of this queue that have not started yet (queued or deferred)."""
        statement = sa.text(
            f"SELECT count(*) FROM {QUEUE_TABLE} "
            "WHERE status = 'queued' AND entrypoint LIKE :prefix"
        )
        return self.session.execute(
            statement, {"prefix": f"{self.name}:%"}
        ).scalar_one()

    @property
    def failed_job_registry(self) -> FailedJobRegistry:
        return FailedJobRegistry(self.name, session=self.session)

    def _queue_for(self, contract: JobContract) -> str:
        if contract.consumer is not None and contract.consumer != self.name:
            raise ValueError(
                f"job {contract.name} is consumed by the {contract.consumer!r} queue, "
                f"not {self.name!r}"
            )
        return self.name


def publish(
    session: Session,
    event: DomainEvent,
    payload: pydantic.BaseModel | Mapping[str, Any],
) -> list[Job]:
    """Enqueue one job per subscriber of ``event`` in the session's transaction.

    The payload is validated against the event's schema and then against each
    subscriber's, so a mismatch fails here, in the request, not in a worker.
    """
    data = event.build(payload).model_dump(mode="json")
    specs = [
        JobSpec(
            contract=contract,
            queue=contract.consumer or "",
            payload=contract.build((), data),
            job_id=new_job_id(),
        )
        for contract in event.subscribers
    ]
    return insert_jobs(session, specs)


def insert_jobs(session: Session, specs: Sequence[JobSpec]) -> list[Job]:
    """Insert the jobs of ``specs`` in one round trip per table.

    A ``job_id`` that exists already keeps its job: enqueue returns that job
    and inserts nothing, so a caller-chosen id works as an idempotency key.
    """
    queue_ids = SyncQueries(SessionDriver(session), qbq=QUEUE_SQL).enqueue(
        [entrypoint_of(spec.queue, spec.contract.name) for spec in specs],
        [spec.payload.model_dump_json().encode() for spec in specs],
        [spec.priority for spec in specs],
        [spec.delay for spec in specs],
        [spec.job_id for spec in specs],
        [spec.headers() for spec in specs],
        on_conflict="skip",
    )
    rows = [
        _state_row(spec, queue_id)
        for spec, queue_id in zip(specs, queue_ids, strict=True)
        if queue_id is not None
    ]
    if rows:
        inserted = set(
            session.execute(
                insert(job_table)
                .values(rows)
                .on_conflict_do_nothing()
                .returning(job_table.c.id)
            ).scalars()
        )
        _remove_orphans(session, [row for row in rows if row["id"] not in inserted])
    return [Job(spec.job_id, session=session) for spec in specs]


def new_job_id() -> str:
    return uuid.uuid4().hex


def _state_row(spec: JobSpec, queue_id: int) -> dict[str, Any]:
    return {
        "id": spec.job_id,
        "queue_job_id": queue_id,
        "queue": spec.queue,
        "name": spec.contract.name,
        "version": spec.contract.version,
        "status": JobStatus.QUEUED.value,
        "payload": json.loads(spec.payload.model_dump_json()),
        "request_id": request_id_var.get(),
        "actor": actor_var.get(),
    }


def _remove_orphans(session: Session, rows: list[dict[str, Any]]) -> None:
    """Delete queue rows whose job id belonged to an earlier, finished job."""
    if not rows:
        return
    session.execute(
        sa.text(
            f"""
            WITH removed AS (
                DELETE FROM {QUEUE_TABLE} WHERE id = ANY(:ids) RETURNING id
            )
            DELETE FROM {QUEUE_LOG_TABLE} WHERE job_id IN (SELECT id FROM removed)
            """
        ),
        {"ids": [row["queue_job_id"] for row in rows]},
    )


def _pop_options(contract: JobContract, kwargs: dict[str, Any]) -> dict[str, Any]:
    fields = contract.payload.model_fields
    options = {
        name: kwargs.pop(name)
        for name in ("job_id", "retry", "at_front", "priority")
        if name in kwargs and name not in fields
    }
    unsupported = sorted(
        name for name in kwargs if name in UNSUPPORTED_RQ_OPTIONS - set(fields)
    )
    if unsupported:
        raise TypeError(
            f"RQ option(s) {', '.join(unsupported)} are not supported by "
            "edulink.jobs; docs/jobs.md lists the alternatives"
        )
    return options


def _check_job_id(job_id: str | None) -> str:
    if job_id is None:
        return new_job_id()
    if not job_id or len(job_id) > 200:
        raise ValueError("job_id must be 1 to 200 characters")
    return job_id


def _priority(at_front: bool, priority: int) -> int:
    if at_front:
        return AT_FRONT_PRIORITY
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be between -{MAX_PRIORITY} and {MAX_PRIORITY}")
    return priority

"""Helpers for notifications tests: enqueue jobs, run them, read tables."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask

from edulink.jobs import JobContract, Queue, Worker, WorkerOptions
from notifications.contracts import NOTIFY, QUEUE
from notifications.db import db
from notifications.jobs import registry

# Short timeouts so retries and re-runs happen within a test's time budget.
FAST_OPTIONS = WorkerOptions(
    concurrency=4, heartbeat_timeout=2.0, dequeue_timeout=0.2, drain_timeout=5.0
)
PROBLEM_JSON = "application/problem+json"


def run_jobs(app: Flask) -> None:
    """Run the queued jobs in this process until the queue is empty.

    A job waiting for a retry keeps the worker running until it is done.
    """
    Worker.for_app(app, registry, FAST_OPTIONS).run(burst=True)


def enqueue(contract: JobContract, *, job_id: str | None = None, **payload: Any) -> str:
    """Enqueue one job in its own committed transaction and return its id."""
    with db.transaction() as session:
        job = Queue(QUEUE, session=session).enqueue_call(
            contract, kwargs=payload, job_id=job_id
        )
    return job.id


def status_change(user_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """A notify payload as the internships service sends on a status change."""
    application_id = fields.pop("entity_id", uuid.uuid4())
    payload = {
        "recipient_user_id": user_id,
        "kind": "application_status_changed",
        "title": "Your application is shortlisted",
        "body": "Your application to 'Data intern' is now SHORTLISTED.",
        "entity_type": "application",
        "entity_id": application_id,
    }
    payload.update(fields)
    return payload


def enqueue_notify(
    user_id: uuid.UUID, *, job_id: str | None = None, **fields: Any
) -> str:
    return enqueue(NOTIFY, job_id=job_id, **status_change(user_id, **fields))


def scalar(sql: str, **params: Any) -> Any:
    """Run one SQL query outside any request and return its single value."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


def job_statuses(name: str) -> list[str]:
    """Statuses of the jobs of type ``name``, oldest first."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT status FROM jobs.job WHERE name = :name ORDER BY enqueued_at"
            ),
            {"name": name},
        )
        return [row.status for row in rows]


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> Any:
    """Poll ``condition`` every 50 ms until it returns a true value, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def job_attempts(job_id: str) -> int:
    """How many times the job's handler has run, failures included."""
    return scalar("SELECT attempts FROM jobs.job WHERE id = :id", id=job_id) or 0


@contextmanager
def running_worker(app: Flask) -> Iterator[Worker]:
    """Run a continuous worker for ``app`` on a thread until the block ends.

    Unlike :func:`run_jobs`, it also runs retries whose delay ends later.
    """
    worker = Worker.for_app(app, registry, FAST_OPTIONS)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=15)

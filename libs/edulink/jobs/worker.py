"""The worker process: pgqueuer's queue and scheduler loops around a thread pool.

pgqueuer runs on asyncio with autocommit psycopg connections. The handlers
are synchronous SQLAlchemy code, so each job runs in a thread of a pool sized
to the worker's concurrency. A loop whose connection fails (the
server restarted, the backend was terminated) logs the error, reconnects and
goes on. Jobs it had picked keep their rows: another dequeue takes them once
their heartbeat is older than the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import sqlalchemy as sa
from croniter import croniter
from flask import Flask
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.core.qm import QueueManager
from pgqueuer.core.sm import SchedulerManager
from pgqueuer.domain.errors import RetryRequested
from pgqueuer.domain.models import Job as QueuedJob
from pgqueuer.domain.models import Schedule
from pgqueuer.domain.types import Channel, QueueExecutionMode
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from edulink.db import get_database, sqlalchemy_url
from edulink.jobs.driver import SplitPsycopgDriver
from edulink.jobs.queue import Queue
from edulink.jobs.registry import JobRegistry, ScheduledJob
from edulink.jobs.runner import JobRunner, Outcome
from edulink.jobs.schema import (
    PGQUEUER_SETTINGS,
    QUEUE_SQL,
    QUEUE_TABLE,
    SessionDriver,
    job_table,
    libpq_url,
    pgqueuer_queries,
)

log = logging.getLogger(__name__)

# Exit status when running jobs outlast the drain timeout after SIGTERM.
EXIT_DRAIN_TIMEOUT = 3


class JobFailed(Exception):
    """Tells pgqueuer to hold a job as failed; the runner has logged the cause."""


class _DropHeldFailures(logging.Filter):
    """Keep pgqueuer from logging a second traceback for a failure the runner logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, JobFailed)


logging.getLogger("pgqueuer").addFilter(_DropHeldFailures())


@dataclass(frozen=True)
class WorkerOptions:
    """Tuning of one worker process. Times are in seconds."""

    concurrency: int = 4
    heartbeat_timeout: float = 30.0
    dequeue_timeout: float = 5.0
    drain_timeout: float = 30.0
    restart_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        if self.heartbeat_timeout <= 0 or self.drain_timeout < 0:
            raise ValueError("heartbeat_timeout must be > 0 and drain_timeout >= 0")

    @property
    def batch_size(self) -> int:
        return max(1, self.concurrency // 2)

    @property
    def max_picked(self) -> int:
        # pgqueuer requires its cap on picked jobs to be at least twice the batch.
        return max(self.concurrency, 2 * self.batch_size)


class Worker:
    """Runs the jobs of ``registry`` until stopped, as RQ's ``Worker``."""

    def __init__(
        self,
        registry: JobRegistry,
        *,
        database_url: str,
        sessions: sessionmaker[Session],
        app: Flask | None = None,
        options: WorkerOptions | None = None,
        name: str | None = None,
    ) -> None:
        self.registry = registry
        self.options = options or WorkerOptions()
        self.name = name or f"{registry.queue}-worker-{os.getpid()}"
        self._url = libpq_url(database_url)
        self._sessions = sessions
        self._runner = JobRunner(registry, sessions, app=app)
        self._executor = ThreadPoolExecutor(
            self.options.max_picked, thread_name_prefix=f"{registry.queue}-job"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._running = 0
        self._owned_engine: Engine | None = None

    @classmethod
    def for_app(
        cls, app: Flask, registry: JobRegistry, options: WorkerOptions | None = None
    ) -> Worker:
        """Build a worker on ``app``'s database that runs handlers in its context."""
        database = get_database(app)
        assert database.engine is not None
        url = database.engine.url.render_as_string(hide_password=False)
        options = options or WorkerOptions()
        name = f"{app.name}-worker-{os.getpid()}"
        sessions = handler_sessions(url, options=options, application_name=name)
        worker = cls(
            registry,
            database_url=url,
            sessions=sessions,
            app=app,
            options=options,
            name=name,
        )
        # The worker built this pool, so it closes it when it stops.
        worker._owned_engine = sessions.kw["bind"]
        return worker

    def run(self, *, burst: bool = False, handle_signals: bool = False) -> None:
        """Process jobs until stopped; with ``burst``, until the queue is empty."""
        asyncio.run(self.serve(burst=burst, handle_signals=handle_signals))

    async def serve(self, *, burst: bool = False, handle_signals: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if handle_signals:
            self._install_signal_handlers()
        log.info(
            "worker %s started on queue %s with %d job types, concurrency %d",
            self.name,
            self.registry.queue,
            len(self.registry),
            self.options.concurrency,
        )
        loops = [self._supervise(self._queue_cycle, burst)]
        if self.registry.schedules and not burst:
            loops.append(self._supervise(self._schedule_cycle, burst))
        try:
            await asyncio.gather(*loops)
        finally:
            self._executor.shutdown(wait=True)
            if self._owned_engine is not None:
                self._owned_engine.dispose()
            log.info("worker %s stopped", self.name)

    def stop(self) -> None:
        """Stop taking jobs and return once running ones finish. Thread-safe."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def _supervise(
        self, cycle: Callable[[bool], Awaitable[None]], burst: bool
    ) -> None:
        """Run ``cycle`` again after each failure until the worker stops."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                await cycle(burst)
            except Exception as error:
                log.error(
                    "worker %s lost its connection, reconnecting in %.1f s: %r",
                    self.name,
                    self.options.restart_delay,
                    error,
                )
                await _wait(self._stopping, self.options.restart_delay)
                continue
            if burst:
                return

    async def _queue_cycle(self, burst: bool) -> None:
        await asyncio.to_thread(self._fail_unknown_jobs)
        async with await self._connect() as connection, await self._connect() as listen:
            manager = QueueManager(
                pgqueuer_queries(SplitPsycopgDriver(connection, listen)),
                Channel(PGQUEUER_SETTINGS.channel),
            )
            for entrypoint, registration in self.registry:
                manager.entrypoint(
                    entrypoint,
                    concurrency_limit=registration.concurrency_limit,
                    accepts_context=False,
                    on_failure="hold",
                )(self._dispatch)
            await self._run_until_stopped(
                manager.shutdown,
                manager.run(
                    dequeue_timeout=timedelta(seconds=self.options.dequeue_timeout),
                    batch_size=self.options.batch_size,
                    mode=QueueExecutionMode.drain
                    if burst
                    else QueueExecutionMode.continuous,
                    max_concurrent_tasks=self.options.max_picked,
                    shutdown_on_listener_failure=True,
                    heartbeat_timeout=timedelta(seconds=self.options.heartbeat_timeout),
                ),
            )

    async def _schedule_cycle(self, _burst: bool) -> None:
        async with await self._connect() as connection:
            manager = SchedulerManager(pgqueuer_queries(PsycopgDriver(connection)))
            for scheduled in self.registry.schedules:
                manager.schedule(
                    self.registry.entrypoint(scheduled.contract),
                    scheduled.expression,
                    accepts_context=False,
                )(_TickEnqueuer(self, scheduled))
            await self._run_until_stopped(manager.shutdown, manager.run())

    async def _run_until_stopped(
        self, shutdown: asyncio.Event, run: Awaitable[None]
    ) -> None:
        """Run a pgqueuer manager, setting its shutdown event when the worker stops.

        A manager returns when shut down or, in burst mode, when the queue is
        empty. A failed connection or LISTEN health check raises instead.
        """
        assert self._stopping is not None
        stopping = self._stopping

        async def forward() -> None:
            await stopping.wait()
            shutdown.set()

        forwarder = asyncio.create_task(forward())
        try:
            await run
        finally:
            forwarder.cancel()

    async def _connect(self) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name=self.name
        )

    async def _dispatch(self, job: QueuedJob) -> None:
        """pgqueuer's entrypoint: run the job in a thread and report its outcome."""
        assert self._loop is not None
        self._running += 1
        try:
            result = await self._loop.run_in_executor(
                self._executor, self._runner.run, job
            )
        finally:
            self._running -= 1
        if result.outcome is Outcome.RETRY:
            raise RetryRequested(
                delay=timedelta(seconds=result.delay), reason=result.error
            )
        if result.outcome is Outcome.FAILED:
            raise JobFailed(result.error)

    def _fail_unknown_jobs(self) -> None:
        """Hold as failed the queued jobs of this queue that no handler here accepts."""
        known = [entrypoint for entrypoint, _ in self.registry]
        with self._sessions() as session, session.begin():
            rows = session.execute(
                sa.text(
                    f"SELECT id, entrypoint FROM {QUEUE_TABLE} "
                    "WHERE status = 'queued' AND entrypoint LIKE :prefix "
                    "AND entrypoint <> ALL(:known) FOR UPDATE SKIP LOCKED"
                ),
                {"prefix": f"{self.registry.queue}:%", "known": known},
            ).all()
            if not rows:
                return
            ids = [row.id for row in rows]
            SessionDriver(session).fetch(
                QUEUE_SQL.build_log_job_query(),
                ids,
                ["failed"] * len(ids),
                [None] * len(ids),
            )
            session.execute(
                sa.update(job_table)
                .where(
                    job_table.c.queue_job_id.in_(ids), job_table.c.status == "queued"
                )
                .values(
                    status="failed",
                    ended_at=sa.func.now(),
                    error=sa.literal("UnknownJobType: no handler for ")
                    + job_table.c.name
                    + " in this worker",
                )
            )
        for row in rows:
            log.error(
                "job type %s has no handler here; its job %d is held as failed",
                row.entrypoint,
                row.id,
            )

    def _install_signal_handlers(self) -> None:
        assert self._loop is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        assert self._loop is not None
        assert self._stopping is not None
        if self._stopping.is_set():
            self._drain_expired()
            return
        log.info(
            "worker %s received %s: taking no new jobs, waiting %.0f s for %d running",
            self.name,
            signal.Signals(signum).name,
            self.options.drain_timeout,
            self._running,
        )
        self._stopping.set()
        self._loop.call_later(self.options.drain_timeout, self._drain_expired)

    def _drain_expired(self) -> None:
        # Running handlers cannot be interrupted, so the process leaves without
        # them. Their jobs keep status picked and run again once stale.
        log.error(
            "worker %s exits with %d jobs still running; they run again after the "
            "heartbeat timeout",
            self.name,
            self._running,
        )
        logging.shutdown()
        os._exit(EXIT_DRAIN_TIMEOUT)


def handler_sessions(
    database_url: str, *, options: WorkerOptions, application_name: str
) -> sessionmaker[Session]:
    """Build the sessions of a worker's handlers: one pooled connection per thread.

    The pool skips edulink.db's ping on checkout, a round trip per job. A job
    that meets a dead connection fails and is retried, and SQLAlchemy then
    replaces every connection of the pool.
    """
    engine = sa.create_engine(
        sqlalchemy_url(database_url),
        pool_size=options.max_picked,
        max_overflow=2,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"application_name": application_name},
    )
    return sessionmaker(engine, expire_on_commit=False)


class _TickEnqueuer:
    """pgqueuer schedule callback that enqueues one job for the tick being fired."""

    def __init__(self, worker: Worker, scheduled: ScheduledJob) -> None:
        self._worker = worker
        self._scheduled = scheduled

    async def __call__(self, schedule: Schedule) -> None:
        # pgqueuer has already moved next_run to the coming tick, so the tick
        # firing now is the one before it.
        tick: datetime = croniter(schedule.expression, schedule.next_run).get_prev(
            datetime
        )
        await asyncio.to_thread(self._enqueue, tick)

    def _enqueue(self, tick: datetime) -> None:
        contract = self._scheduled.contract
        job_id = (
            f"cron:{self._worker.registry.queue}:{contract.name}:{tick:%Y%m%dT%H%M%SZ}"
        )
        with self._worker._sessions() as session, session.begin():
            Queue(self._worker.registry.queue, session=session).enqueue_call(
                contract, kwargs=self._scheduled.payload, job_id=job_id
            )
        log.info("scheduled job %s enqueued for tick %s", job_id, tick.isoformat())


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)

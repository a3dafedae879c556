"""Benchmark edulink.jobs against bare pgqueuer, and the ledger's append rate.

Run from the repository root::

    .venv/bin/python -m bench.jobs.run            # or: python bench/jobs/run.py

It creates a throwaway database, installs the job tables and measures, each
``--runs`` times with the contenders alternating run by run:

* drain throughput of no-op jobs: edulink.jobs' worker against pgqueuer's
  QueueManager with an async no-op entrypoint, both on psycopg 3, with the
  same batch size and cap on picked jobs. pgqueuer runs twice: on its own
  psycopg driver and on the two-connection driver edulink.jobs uses;
* enqueue throughput, one job per committed transaction;
* latency from the enqueue call to the handler's first line, with the worker
  in another process and an idle queue;
* ledger appends per second for one hot entity and for many entities.

It prints a Markdown report of medians and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):
    # Started as a script: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg
import pydantic
import sqlalchemy as sa
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.adapters.persistence.queries import SyncQueries
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain.types import Channel, QueueExecutionMode
from sqlalchemy.orm import Session, sessionmaker

from bench.common.machine import describe_machine
from edulink.db import create_engine
from edulink.jobs import JobContract, JobRegistry, Queue, Worker, WorkerOptions
from edulink.jobs.driver import SplitPsycopgDriver
from edulink.jobs.queue import JobSpec, insert_jobs, new_job_id
from edulink.jobs.schema import (
    PGQUEUER_SETTINGS,
    QUEUE_SQL,
    install,
    libpq_url,
    pgqueuer_queries,
)
from edulink.jobs.worker import handler_sessions
from edulink.ledger import Ledger
from edulink.testing.databases import create_database, drop_database

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/postgres"
QUEUE = "bench"
BARE_ENTRYPOINT = "bare:noop"
CHANNEL = Channel(PGQUEUER_SETTINGS.channel)


class Noop(pydantic.BaseModel):
    n: int


class Ping(pydantic.BaseModel):
    n: int


NOOP = JobContract("bench.noop", 1, Noop, consumer=QUEUE)
NOOP_UNGUARDED = JobContract(
    "bench.noop_unguarded", 1, Noop, consumer=QUEUE, run_once=False
)
PING = JobContract("bench.ping", 1, Ping, consumer=QUEUE)
ledger_metadata = sa.MetaData(schema="bench")
LEDGER = Ledger(ledger_metadata, queue=QUEUE)


@dataclass(frozen=True)
class Settings:
    database_url: str
    runs: int
    jobs: int
    enqueue_jobs: int
    concurrency: int
    latency_samples: int
    ledger_events: int

    @property
    def options(self) -> WorkerOptions:
        return WorkerOptions(concurrency=self.concurrency, dequeue_timeout=0.1)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# Drain throughput.


def drain_edulink(
    settings: Settings, sessions: sessionmaker[Session], contract: JobContract = NOOP
) -> float:
    """Drain no-op jobs with ``sessions`` built as ``flask worker`` builds them."""
    registry = JobRegistry(QUEUE)
    registry.register(contract, lambda _payload, _context: None)
    with sessions.begin() as session:
        specs = [
            JobSpec(contract, QUEUE, Noop(n=n), new_job_id())
            for n in range(settings.jobs)
        ]
        insert_jobs(session, specs)
    worker = Worker(
        registry,
        database_url=settings.database_url,
        sessions=sessions,
        options=settings.options,
    )
    started = time.perf_counter()
    worker.run(burst=True)
    return settings.jobs / (time.perf_counter() - started)


def drain_bare(settings: Settings, *, split: bool) -> float:
    return asyncio.run(_drain_bare(settings, split=split))


async def _drain_bare(settings: Settings, *, split: bool) -> float:
    url = libpq_url(settings.database_url)
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as connection,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as listen,
    ):
        driver = (
            SplitPsycopgDriver(connection, listen)
            if split
            else PsycopgDriver(connection)
        )
        queries = pgqueuer_queries(driver)
        count = settings.jobs
        await queries.enqueue(
            [BARE_ENTRYPOINT] * count, [b'{"n":0}'] * count, [0] * count
        )
        manager = QueueManager(queries, CHANNEL)

        @manager.entrypoint(BARE_ENTRYPOINT)
        async def noop(_job: object) -> None:
            return None

        options = settings.options
        started = time.perf_counter()
        await manager.run(
            dequeue_timeout=timedelta(seconds=options.dequeue_timeout),
            batch_size=options.batch_size,
            mode=QueueExecutionMode.drain,
            max_concurrent_tasks=options.max_picked,
        )
        return count / (time.perf_counter() - started)


# Enqueue throughput: one job per committed transaction, as a request does.


def enqueue_edulink(settings: Settings, sessions: sessionmaker[Session]) -> float:
    started = time.perf_counter()
    for number in range(settings.enqueue_jobs):
        with sessions.begin() as session:
            Queue(QUEUE, session=session).enqueue(NOOP, number)
    rate = settings.enqueue_jobs / (time.perf_counter() - started)
    _clear_queue(sessions)
    return rate


def enqueue_bare(settings: Settings, sessions: sessionmaker[Session]) -> float:
    with psycopg.connect(
        libpq_url(settings.database_url), autocommit=True
    ) as connection:
        from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver

        queries = SyncQueries(SyncPsycopgDriver(connection), qbq=QUEUE_SQL)
        started = time.perf_counter()
        for _ in range(settings.enqueue_jobs):
            queries.enqueue(BARE_ENTRYPOINT, b'{"n":0}')
        rate = settings.enqueue_jobs / (time.perf_counter() - started)
    _clear_queue(sessions)
    return rate


def _clear_queue(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(sa.text("TRUNCATE jobs.pgqueuer, jobs.job, jobs.pgqueuer_log"))


# Latency: worker in a child process, one job at a time on an idle queue.


def _latency_worker(
    kind: str, database_url: str, concurrency: int, started: multiprocessing.Queue
) -> None:
    logging.basicConfig(level=logging.WARNING)
    if kind == "edulink":
        registry = JobRegistry(QUEUE)
        registry.register(
            PING, lambda payload, _context: started.put((payload.n, time.time()))
        )
        options = WorkerOptions(concurrency=concurrency)
        worker = Worker(
            registry,
            database_url=database_url,
            sessions=handler_sessions(
                database_url, options=options, application_name="bench-worker"
            ),
            options=options,
        )
        worker.run(handle_signals=True)
        return
    asyncio.run(_bare_latency_worker(database_url, concurrency, started))


async def _bare_latency_worker(
    database_url: str, concurrency: int, started: multiprocessing.Queue
) -> None:
    import signal

    url = libpq_url(database_url)
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as connection,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as listen,
    ):
        manager = QueueManager(
            pgqueuer_queries(SplitPsycopgDriver(connection, listen)), CHANNEL
        )

        @manager.entrypoint(BARE_ENTRYPOINT)
        async def ping(job: object) -> None:
            started.put((int(job.payload or b"0"), time.time()))  # type: ignore[attr-defined]

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, manager.shutdown.set)
        options = WorkerOptions(concurrency=concurrency)
        await manager.run(
            batch_size=options.batch_size, max_concurrent_tasks=options.max_picked
        )


@dataclass(frozen=True)
class Latency:
    """Milliseconds to the handler's first line, per job."""

    from_enqueue: list[float]
    from_commit: list[float]


def measure_latency(
    settings: Settings, sessions: sessionmaker[Session], kind: str
) -> Latency:
    """Time jobs from the enqueue call, and from its commit, to the handler."""
    context = multiprocessing.get_context("spawn")
    started: multiprocessing.Queue = context.Queue()
    process = context.Process(
        target=_latency_worker,
        args=(kind, settings.database_url, settings.concurrency, started),
    )
    process.start()
    try:
        enqueue = _latency_enqueue(settings, sessions, kind)
        enqueue(-1)
        started.get(timeout=30)  # the worker is up and warm
        latency = Latency([], [])
        for number in range(settings.latency_samples):
            sent = time.time()
            enqueue(number)
            committed = time.time()
            received_number, handler_start = started.get(timeout=30)
            assert received_number == number
            latency.from_enqueue.append((handler_start - sent) * 1000)
            latency.from_commit.append((handler_start - committed) * 1000)
            time.sleep(0.01)
        return latency
    finally:
        process.terminate()
        process.join(timeout=30)
        _clear_queue(sessions)


def _latency_enqueue(
    settings: Settings, sessions: sessionmaker[Session], kind: str
) -> Callable[[int], None]:
    if kind == "edulink":

        def enqueue(number: int) -> None:
            with sessions.begin() as session:
                Queue(QUEUE, session=session).enqueue(PING, number)

        return enqueue

    from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver

    connection = psycopg.connect(libpq_url(settings.database_url), autocommit=True)
    queries = SyncQueries(SyncPsycopgDriver(connection), qbq=QUEUE_SQL)

    def enqueue_bare_job(number: int) -> None:
        queries.enqueue(BARE_ENTRYPOINT, str(number).encode())

    return enqueue_bare_job


# Ledger appends.


def ledger_rate(
    settings: Settings, sessions: sessionmaker[Session], *, hot: bool
) -> float:
    registry = JobRegistry(QUEUE)
    LEDGER.register_jobs(registry)
    prefix = new_job_id()
    for first in range(0, settings.ledger_events, 100):
        with sessions.begin() as session:
            for number in range(first, min(first + 100, settings.ledger_events)):
                LEDGER.record_event(
                    session,
                    entity_type="application",
                    entity_id=prefix if hot else f"{prefix}-{number}",
                    event_type="application.status_changed",
                    actor="bench",
                    old={"status": "APPLIED"},
                    new={"status": "SHORTLISTED", "n": number},
                )
    worker = Worker(
        registry,
        database_url=settings.database_url,
        sessions=sessions,
        options=settings.options,
    )
    started = time.perf_counter()
    worker.run(burst=True)
    rate = settings.ledger_events / (time.perf_counter() - started)
    if hot:
        with sessions() as session:
            assert LEDGER.verify(session, "application", prefix).valid
    return rate


# Report.


def run(settings: Settings) -> str:
    engine = create_engine(settings.database_url, pool_size=settings.concurrency + 2)
    sessions = sessionmaker(engine, expire_on_commit=False)
    worker_sessions = handler_sessions(
        settings.database_url, options=settings.options, application_name="bench-worker"
    )
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SCHEMA IF NOT EXISTS bench"))
        ledger_metadata.create_all(connection)

    results: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)
        log.warning("%s: %.1f", name, value)

    for _ in range(settings.runs):
        record("drain edulink", drain_edulink(settings, worker_sessions))
        record("drain bare split", drain_bare(settings, split=True))
        unguarded = drain_edulink(settings, worker_sessions, NOOP_UNGUARDED)
        record("drain edulink unguarded", unguarded)
        record("drain bare stock", drain_bare(settings, split=False))
        record("enqueue edulink", enqueue_edulink(settings, sessions))
        record("enqueue bare", enqueue_bare(settings, sessions))
        record("ledger hot", ledger_rate(settings, worker_sessions, hot=True))
        record("ledger many", ledger_rate(settings, worker_sessions, hot=False))

    latency = {
        kind: measure_latency(settings, sessions, kind) for kind in ("edulink", "bare")
    }
    engine.dispose()
    return report(settings, results, latency)


def report(
    settings: Settings, results: dict[str, list[float]], latency: dict[str, Latency]
) -> str:
    def cell(name: str) -> str:
        values = results[name]
        return f"{median(values):,.0f} ({min(values):,.0f} to {max(values):,.0f})"

    def ratio(ours: str, bare: str) -> str:
        pairs = zip(results[ours], results[bare], strict=True)
        return f"{median([a / b for a, b in pairs]):.2f}"

    def compare(label: str, ours: str, bare: str) -> str:
        return f"| {label} | {cell(ours)} | {cell(bare)} | {ratio(ours, bare)} |"

    def latency_row(label: str, fraction: float, *, from_commit: bool) -> str:
        def value(kind: str) -> float:
            measured = latency[kind]
            samples = measured.from_commit if from_commit else measured.from_enqueue
            return percentile(samples, fraction)

        return f"| {label} | {value('edulink'):.1f} | {value('bare'):.1f} | |"

    load = os.getloadavg()
    drain = (
        f"no-op drain, jobs/s ({settings.jobs} jobs, {settings.concurrency} threads)"
    )
    return "\n".join(
        [
            f"Command: `.venv/bin/python -m bench.jobs.run --runs {settings.runs} "
            f"--jobs {settings.jobs} --concurrency {settings.concurrency}`",
            "",
            *(f"- {key}: {value}" for key, value in describe_machine().items()),
            f"- load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"- PostgreSQL {_server_version(settings.database_url)} on loopback",
            "",
            f"Medians of {settings.runs} runs (min to max in brackets). A ratio is "
            "the median of run-by-run ratios.",
            "",
            "| measurement | edulink.jobs | bare pgqueuer | ratio |",
            "|---|---|---|---|",
            compare(drain, "drain edulink", "drain bare split"),
            compare(
                "same, jobs with run_once=False",
                "drain edulink unguarded",
                "drain bare split",
            ),
            compare(
                "same, bare on pgqueuer's own psycopg driver",
                "drain edulink",
                "drain bare stock",
            ),
            compare(
                f"enqueue, jobs/s, one per commit ({settings.enqueue_jobs} jobs)",
                "enqueue edulink",
                "enqueue bare",
            ),
            latency_row(
                f"enqueue call to handler, p50 ms ({settings.latency_samples} jobs)",
                0.5,
                from_commit=False,
            ),
            latency_row("enqueue call to handler, p95 ms", 0.95, from_commit=False),
            latency_row("commit to handler, p50 ms", 0.5, from_commit=True),
            latency_row("commit to handler, p95 ms", 0.95, from_commit=True),
            "",
            "| ledger appends/s | median (min to max) |",
            "|---|---|",
            f"| one hot entity, {settings.ledger_events} events "
            f"| {cell('ledger hot')} |",
            f"| {settings.ledger_events} entities, one event each "
            f"| {cell('ledger many')} |",
        ]
    )


def _server_version(database_url: str) -> str:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return str(connection.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="Repetitions of each measurement"
    )
    parser.add_argument(
        "--jobs", type=int, default=2000, help="No-op jobs per drain run"
    )
    parser.add_argument(
        "--enqueue-jobs", type=int, default=500, help="Jobs per enqueue run"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="Worker concurrency")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--ledger-events", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    database_url = create_database(args.server_url, prefix="edulink_bench_jobs")
    try:
        install(database_url)
        settings = Settings(
            database_url=database_url,
            runs=args.runs,
            jobs=args.jobs,
            enqueue_jobs=args.enqueue_jobs,
            concurrency=args.concurrency,
            latency_samples=args.latency_samples,
            ledger_events=args.ledger_events,
        )
        print(run(settings))
    finally:
        drop_database(database_url)


if __name__ == "__main__":
    main()

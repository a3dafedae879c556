"""Flask CLI commands of a service's job queue: ``worker`` and ``jobs ...``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from edulink.db import get_database
from edulink.jobs.health import (
    DEFAULT_STALL_SECONDS,
    JobTypeHealth,
    queue_health,
    summarize,
)
from edulink.jobs.job import Job, failed_job_ids, requeue_jobs
from edulink.jobs.registry import JobRegistry
from edulink.jobs.schema import install
from edulink.jobs.worker import Worker, WorkerOptions


def register_cli(app: Flask, registry: JobRegistry) -> None:
    """Add ``flask worker`` and ``flask jobs failed/requeue/health/install``."""
    app.cli.add_command(_worker_command(app, registry))
    app.cli.add_command(_jobs_group(app, registry))


def _session(app: Flask) -> Session:
    database = get_database(app)
    assert database.sessionmaker is not None, "Database.init_app was not called"
    return database.sessionmaker()


def _worker_command(app: Flask, registry: JobRegistry) -> click.Command:
    @click.command("worker", help=f"Run the jobs of the {registry.queue!r} queue.")
    @click.option(
        "--concurrency",
        default=4,
        show_default=True,
        type=click.IntRange(1, 256),
        help="Jobs run at once, each in a thread.",
    )
    @click.option("--burst", is_flag=True, help="Exit once no job is waiting.")
    @click.option(
        "--heartbeat-timeout",
        default=30.0,
        show_default=True,
        type=click.FloatRange(min=0.5),
        help="Seconds without a heartbeat after which a running job runs again.",
    )
    @click.option(
        "--drain-timeout",
        default=30.0,
        show_default=True,
        type=click.FloatRange(min=0),
        help="Seconds running jobs get to finish after SIGTERM or SIGINT.",
    )
    @click.option(
        "--poll-interval",
        default=5.0,
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="Seconds between queue checks when no notification arrives.",
    )
    def worker(
        concurrency: int,
        burst: bool,
        heartbeat_timeout: float,
        drain_timeout: float,
        poll_interval: float,
    ) -> None:
        options = WorkerOptions(
            concurrency=concurrency,
            heartbeat_timeout=heartbeat_timeout,
            drain_timeout=drain_timeout,
            dequeue_timeout=poll_interval,
        )
        Worker.for_app(app, registry, options).run(burst=burst, handle_signals=True)

    return worker


def _jobs_group(app: Flask, registry: JobRegistry) -> AppGroup:
    jobs = AppGroup("jobs", help=f"Inspect and repair the {registry.queue!r} queue.")

    @jobs.command("failed", help="List failed jobs, most recent first.")
    @click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
    @click.option("--all-queues", is_flag=True, help="Include every service's queue.")
    def failed(limit: int, all_queues: bool) -> None:
        queue = None if all_queues else registry.queue
        with _session(app) as session:
            ids = failed_job_ids(session, queue=queue, limit=limit)
            for job in Job.fetch_many(ids, session=session):
                assert job is not None
                click.echo(_describe_failed(job))
        if not ids:
            click.echo("no failed jobs")

    @jobs.command("requeue", help="Put failed jobs back on the queue.")
    @click.argument("job_ids", nargs=-1)
    @click.option(
        "--all", "requeue_all", is_flag=True, help="Requeue every failed job."
    )
    def requeue(job_ids: tuple[str, ...], requeue_all: bool) -> None:
        if bool(job_ids) == requeue_all:
            raise click.UsageError("give job ids or --all, not both")
        with _session(app) as session, session.begin():
            ids = list(job_ids)
            if requeue_all:
                ids = failed_job_ids(session, queue=registry.queue, limit=100_000)
            done = requeue_jobs(session, ids)
        for job_id in done:
            click.echo(f"requeued {job_id}")
        skipped = sorted(set(ids) - set(done))
        for job_id in skipped:
            click.echo(f"not requeued (unknown, or not failed): {job_id}", err=True)
        if skipped:
            sys.exit(1)

    @jobs.command("health", help="Backlog, oldest waiting job and failures per type.")
    @click.option("--all-queues", is_flag=True, help="Include every service's queue.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option(
        "--max-age",
        type=click.FloatRange(min=0),
        help="Exit with status 1 when a job has waited longer than this, in seconds.",
    )
    def health(all_queues: bool, as_json: bool, max_age: float | None) -> None:
        queue = None if all_queues else registry.queue
        with _session(app) as session:
            entries = queue_health(
                session, queue=queue, stall_seconds=DEFAULT_STALL_SECONDS
            )
        totals = summarize(entries)
        if as_json:
            body = {"job_types": [e.to_json() for e in entries], "totals": totals}
            click.echo(json.dumps(body, indent=2))
        else:
            _print_health(entries, totals)
        oldest = totals["oldest_queued_seconds"]
        if max_age is not None and oldest is not None and oldest > max_age:
            sys.exit(1)

    @jobs.command("install", help="Create or upgrade the job tables (idempotent).")
    def install_command() -> None:
        database = get_database(app)
        assert database.engine is not None
        install(database.engine.url.render_as_string(hide_password=False))
        click.echo("job tables are installed")

    return jobs


def _describe_failed(job: Job) -> str:
    ended = job.ended_at.isoformat(timespec="seconds") if job.ended_at else "-"
    return (
        f"{job.id}  {job.origin}:{job.name}  attempts={job.attempts}  "
        f"ended={ended}  {job.error}"
    )


def _print_health(entries: list[JobTypeHealth], totals: dict[str, Any]) -> None:
    header = f"{'job type':40} {'queued':>7} {'deferred':>8} {'started':>7} "
    header += f"{'stalled':>7} {'failed':>6} {'oldest':>9}"
    click.echo(header)
    for entry in entries:
        oldest = (
            f"{entry.oldest_queued_seconds:8.1f}s"
            if entry.oldest_queued_seconds is not None
            else "        -"
        )
        click.echo(
            f"{entry.queue + ':' + entry.name:40} {entry.queued:7} {entry.deferred:8} "
            f"{entry.started:7} {entry.stalled:7} {entry.failed:6} {oldest}"
        )
    click.echo(
        f"{'total':40} {totals['queued']:7} {totals['deferred']:8} "
        f"{totals['started']:7} {totals['stalled']:7} {totals['failed']:6}"
    )

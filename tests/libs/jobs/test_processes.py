"""Real worker processes: crashes, lost connections, SIGTERM and cron with two workers.

Each worker is ``flask ... worker`` in a subprocess, started the way a service
starts it, with a 1 s heartbeat timeout so a dead worker's jobs move on fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from edulink.jobs import Job, JobStatus, Queue
from edulink.jobs.schema import QUEUE_TABLE
from tests.libs.jobs.conftest import effect_count, scalar
from tests.libs.jobs.sample_app import QUEUE, RECORD

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
APP_NAME = "sampleproc"


class WorkerProcess:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


SpawnWorker = Callable[..., WorkerProcess]


@pytest.fixture
def spawn_worker(
    jobs_database_url: str, jobs_engine: object, tmp_path: Path
) -> Iterator[SpawnWorker]:
    started: list[WorkerProcess] = []

    def spawn(*args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        command = [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "tests.libs.jobs.sample_app:create_app",
            "worker",
            "--heartbeat-timeout=1",
            "--poll-interval=0.2",
            *args,
        ]
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SAMPLE_DATABASE_URL": jobs_database_url,
            "SAMPLE_APP_NAME": APP_NAME,
            **(env or {}),
        }
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command, cwd=REPO, env=environment, stdout=log_file, stderr=log_file
            )
        worker = WorkerProcess(process, log_path)
        started.append(worker)
        wait_for(lambda: "started on queue" in log_path.read_text(), timeout=15)
        return worker

    yield spawn
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        try:
            worker.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


def enqueue_record(sessions: sessionmaker[Session], **payload: object) -> Job:
    with sessions.begin() as session:
        return Queue(QUEUE, session=session).enqueue_call(RECORD, kwargs=payload)


def status_of(sessions: sessionmaker[Session], job: Job) -> JobStatus:
    with sessions() as session:
        return Job.fetch(job.id, session=session).get_status()


def test_killed_mid_job_runs_again_once(
    sessions: sessionmaker[Session], spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    first = spawn_worker()
    job = enqueue_record(sessions, key="kill-mid-job", hold_file=str(hold))
    wait_for(lambda: status_of(sessions, job) is JobStatus.STARTED)

    first.process.kill()
    first.process.wait()
    hold.unlink()
    spawn_worker()

    wait_for(lambda: status_of(sessions, job) is JobStatus.FINISHED)
    assert effect_count(sessions, "kill-mid-job") == 1


def test_killed_after_commit_skips_rerun(
    sessions: sessionmaker[Session], spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    first = spawn_worker()
    job = enqueue_record(
        sessions, key="kill-after-commit", hold_file=str(hold), hold_when="after_commit"
    )
    wait_for(lambda: effect_count(sessions, "kill-after-commit") == 1)

    first.process.kill()
    first.process.wait()
    hold.unlink()
    second = spawn_worker()

    queue_row = f"SELECT count(*) FROM {QUEUE_TABLE} WHERE dedupe_key = :id"
    wait_for(lambda: scalar(sessions, queue_row, id=job.id) == 0)
    assert effect_count(sessions, "kill-after-commit") == 1
    assert status_of(sessions, job) is JobStatus.FINISHED
    skipped = [
        line
        for line in second.log_lines()
        if job.id in str(line.get("message"))
        and "handler is skipped" in str(line.get("message"))
    ]
    assert len(skipped) == 1


def test_terminated_connections_reconnect(
    sessions: sessionmaker[Session], spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("--concurrency=2")
    jobs = [
        enqueue_record(sessions, key=f"reconnect-{i}", sleep=0.05) for i in range(30)
    ]
    wait_for(lambda: effect_count(sessions, "reconnect-0") == 1)

    terminated = scalar(
        sessions,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name LIKE :name AND datname = current_database()",
        name=f"{APP_NAME}%",
    )
    assert terminated >= 2  # type: ignore[operator]

    for job in jobs:
        wait_for(lambda job=job: status_of(sessions, job) is JobStatus.FINISHED)
    for index in range(30):
        assert effect_count(sessions, f"reconnect-{index}") == 1
    assert worker.process.poll() is None
    assert any(
        "reconnecting" in str(line.get("message")) for line in worker.log_lines()
    )


def test_sigterm_drains_running_job(
    sessions: sessionmaker[Session], spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("--drain-timeout=10")
    running = enqueue_record(sessions, key="drain", sleep=1.5)
    wait_for(lambda: status_of(sessions, running) is JobStatus.STARTED)

    worker.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "received SIGTERM" in worker.log_path.read_text())
    waiting = enqueue_record(sessions, key="after-sigterm")

    assert worker.process.wait(timeout=10) == 0
    assert status_of(sessions, running) is JobStatus.FINISHED
    assert status_of(sessions, waiting) is JobStatus.QUEUED
    with sessions.begin() as session:
        Job.fetch(waiting.id, session=session).cancel()


def test_drain_timeout_bounds_shutdown(
    sessions: sessionmaker[Session], spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    worker = spawn_worker("--drain-timeout=1")
    stuck = enqueue_record(sessions, key="stuck", hold_file=str(hold))
    wait_for(lambda: status_of(sessions, stuck) is JobStatus.STARTED)

    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)

    assert worker.process.wait(timeout=10) == 3
    assert time.monotonic() - started < 5
    hold.unlink()
    spawn_worker()
    wait_for(lambda: status_of(sessions, stuck) is JobStatus.FINISHED)
    assert effect_count(sessions, "stuck") == 1


def test_cron_tick_runs_once_with_two_workers(
    sessions: sessionmaker[Session], spawn_worker: SpawnWorker
) -> None:
    cron = {"SAMPLE_CRON": "* * * * * */2"}
    workers = [spawn_worker(env=cron), spawn_worker(env=cron)]
    time.sleep(7)
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.process.wait(timeout=10) == 0

    fired = [
        str(line["message"])
        for worker in workers
        for line in worker.log_lines()
        if str(line.get("message", "")).startswith("scheduled job")
    ]
    assert len(fired) >= 3
    assert len(fired) == len(set(fired))
    with sessions() as session:
        ticks = session.execute(
            sa.text("SELECT job_id FROM sample.effects WHERE key = 'tick'")
        ).scalars()
        tick_ids = list(ticks)
    assert len(tick_ids) == len(set(tick_ids))
    assert len(tick_ids) >= len(fired) - 1

"""Benchmark certificate requests to READY against bare WeasyPrint, same HTML.

Run from the repository root::

    .venv/bin/python -m bench.documents.run   # --runs 5 --documents 30 --concurrency 1

It creates a throwaway database, migrates the students, internships and
documents schemas and inserts certified placements directly in SQL. The
students and internships apps serve their real APIs from threads of this
process, the documents app handles POST requests in-process, and one
documents worker (``flask worker --concurrency N``, ``--concurrency`` here,
default 1) runs in its own process.

Certificates are requested as the internships service requests them on
CERTIFIED: a ``documents.request_certificate`` job, whose handler reads the
placement over REST, stores the document and enqueues its render. Each run
measures, on placements not used before:

* throughput, in slices of 10 documents that alternate between the two.
  Bare WeasyPrint renders the HTML of a certificate the worker rendered, as
  PDF/A-3u, in this process, one after another. The service gets the
  slice's jobs enqueued in one transaction, timed from the enqueue to the
  last certificate READY. Each side gets ``--documents`` documents;
* service latency: ``--latency-samples`` jobs one at a time, and as many
  ``POST /api/v1/documents`` requests one at a time, each timed until READY
  by polling the database every 5 ms;
* CPU seconds per document, from /proc: the worker, its render processes,
  this process (the students and internships apps and the client), and the
  PostgreSQL backends of the benchmark's database.

It prints a Markdown report of medians and drops the database.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Started as a script: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg
import weasyprint
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import sessionmaker
from werkzeug.serving import make_server

import documents.app
import internships.app
import students.app
from bench.common.machine import describe_machine
from bench.documents import cpu
from bench.documents.cpu import CpuSample
from documents.contracts import CERTIFICATE_REQUEST
from documents.models import DocumentKind
from documents.rendering import Fonts, Imprint, document_html, verification_url
from edulink.auth import Role
from edulink.db import create_engine
from edulink.jobs import Queue
from edulink.jobs.schema import install
from edulink.migrations import upgrade
from edulink.testing.databases import create_database, drop_database
from edulink.testing.tokens import TokenFactory

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/postgres"
REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_BASE_URL = "https://edulink.example"
CURSOR_SECRET = "bench-cursor-secret-documents"  # noqa: S105 - a throwaway key
POLL_SECONDS = 0.005
SLICE = 10
WARMUP_DOCUMENTS = 3
DAY = 24 * 3600


@dataclass(frozen=True)
class Options:
    runs: int
    documents: int
    latency_samples: int
    concurrency: int

    @property
    def per_run(self) -> int:
        return self.documents + 2 * self.latency_samples

    @property
    def placements(self) -> int:
        return WARMUP_DOCUMENTS + self.runs * self.per_run


@dataclass(frozen=True)
class RunResult:
    service_per_minute: float
    job_p50_ms: float
    request_p50_ms: float
    bare_per_minute: float
    bare_p50_ms: float
    render_p50_ms: float
    service_cpu: CpuSample
    bare_cpu_seconds: float
    documents: int


# Setup: database, apps, seed data.


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def platform_settings(database_url: str, tokens: TokenFactory) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "jwt_issuer": tokens.issuer,
        "jwt_audience": tokens.audience,
        "jwks_file": str(tokens.jwks_path),
        "cursor_secret": CURSOR_SECRET,
        "log_level": "WARNING",
    }


def seed(database_url: str, count: int) -> list[uuid.UUID]:
    """Insert one institution, employer and opportunity, and ``count`` placements.

    Every placement is CERTIFIED and belongs to its own student. Returns the
    application ids.
    """
    institution, employer, opportunity = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = datetime.now(UTC).date() - timedelta(days=120)
    end = start + timedelta(days=90)
    students = [(uuid.uuid4(), uuid.uuid4(), number) for number in range(count)]
    applications = [uuid.uuid4() for _ in range(count)]
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO students.institutions (id, name, email_domains, status, "
            "version) VALUES (%s, 'Kilima University', '{kilima.example}', "
            "'active', 1)",
            (institution,),
        )
        cursor.executemany(
            "INSERT INTO students.students (id, user_id, full_name, email, "
            "institution_id, registration_number, course, year_of_study, skills, "
            "verified, trust_level, version) VALUES (%s, %s, %s, %s, %s, %s, "
            "'BSc Computer Science', 3, '{python}', true, 4, 1)",
            [
                (
                    student_id,
                    user_id,
                    f"Student Number {number}",
                    f"student{number}@kilima.example",
                    institution,
                    f"KU/CS/{number:05d}",
                )
                for student_id, user_id, number in students
            ],
        )
        cursor.execute(
            "INSERT INTO internships.employers (id, name, contact_email, status, "
            "version) VALUES (%s, 'Savanna Labs', 'jobs@savanna.example', "
            "'active', 1)",
            (employer,),
        )
        cursor.execute(
            "INSERT INTO internships.opportunities (id, employer_id, title, "
            "description, skills, location, location_type, capacity, start_date, "
            "end_date, deadline, status, version) VALUES (%s, %s, "
            "'Backend engineering intern', 'Build services.', '{python}', "
            "'Nairobi', 'hybrid', %s, %s, %s, now(), 'CLOSED', 1)",
            (opportunity, employer, count, start, end),
        )
        cursor.executemany(
            "INSERT INTO internships.applications (id, opportunity_id, employer_id, "
            "student_id, student_user_id, institution_id, student_snapshot, status, "
            "start_date, end_date, version) VALUES (%s, %s, %s, %s, %s, %s, "
            "'{}'::jsonb, 'CERTIFIED', %s, %s, 1)",
            [
                (
                    application,
                    opportunity,
                    employer,
                    student_id,
                    user_id,
                    institution,
                    start,
                    end,
                )
                for application, (student_id, user_id, _n) in zip(
                    applications, students, strict=True
                )
            ],
        )
    return applications


@contextmanager
def worker_process(
    env: dict[str, str], concurrency: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Run one documents worker until the block ends."""
    command = [
        str(Path(sys.executable).parent / "flask"),
        "--app",
        "documents.app:create_app",
        "worker",
        "--concurrency",
        str(concurrency),
        "--poll-interval",
        "0.5",
    ]
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


# Measurements.


class Service:
    """Client that requests certificates and waits until they are READY.

    ``enqueue`` sends the job the internships service sends on CERTIFIED;
    ``request`` sends ``POST /api/v1/documents``.
    """

    def __init__(
        self, client: FlaskClient, headers: dict[str, str], database_url: str
    ) -> None:
        self.client = client
        self.headers = headers
        self.connection = psycopg.connect(database_url, autocommit=True)
        self.database = self.connection.info.dbname
        self.sessions = sessionmaker(create_engine(database_url, pool_size=2))

    def enqueue(self, applications: Sequence[uuid.UUID]) -> None:
        """Enqueue one certificate job per application, in one transaction."""
        with self.sessions.begin() as session:
            queue = Queue(CERTIFICATE_REQUEST.consumer or "", session=session)
            for application in applications:
                queue.enqueue_call(
                    CERTIFICATE_REQUEST,
                    kwargs={"application_id": application},
                    job_id=f"bench:{application}",
                )

    def request(self, application_id: uuid.UUID) -> None:
        response = self.client.post(
            "/api/v1/documents",
            json={
                "kind": "completion_certificate",
                "application_id": str(application_id),
            },
            headers=self.headers,
        )
        if response.status_code != 202:
            raise RuntimeError(f"request failed: {response.get_json()}")

    def wait_ready(
        self, applications: Sequence[uuid.UUID], timeout: float = 600
    ) -> None:
        """Poll until every application has a READY certificate."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, failed = self.connection.execute(
                "SELECT count(*) FILTER (WHERE status = 'READY'), "
                "count(*) FILTER (WHERE status = 'FAILED') "
                "FROM documents.documents WHERE application_id = ANY(%s)",
                (list(applications),),
            ).fetchone()
            if failed:
                raise RuntimeError(f"{failed} documents failed")
            if ready == len(applications):
                return
            time.sleep(POLL_SECONDS)
        raise TimeoutError("documents did not become READY in time")

    def drain_seconds(self, applications: Sequence[uuid.UUID]) -> float:
        """Enqueue a job per application at once; return the seconds until all READY."""
        started = time.perf_counter()
        self.enqueue(applications)
        self.wait_ready(applications)
        return time.perf_counter() - started

    def job_latencies(self, applications: Sequence[uuid.UUID]) -> list[float]:
        """Return the ms from enqueueing each job, one at a time, to READY."""
        latencies = []
        for application in applications:
            started = time.perf_counter()
            self.enqueue([application])
            self.wait_ready([application])
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies

    def request_latencies(self, applications: Sequence[uuid.UUID]) -> list[float]:
        """Return the ms from each POST, one at a time, to READY."""
        latencies = []
        for application in applications:
            started = time.perf_counter()
            self.request(application)
            self.wait_ready([application])
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies

    def render_ms(self, applications: Sequence[uuid.UUID]) -> list[int]:
        rows = self.connection.execute(
            "SELECT render_ms FROM documents.documents WHERE application_id = ANY(%s)",
            (list(applications),),
        ).fetchall()
        return [row[0] for row in rows]

    def certificate_html(self, fonts: Fonts) -> str:
        """Return the HTML the worker rendered for the newest certificate."""
        row = self.connection.execute(
            "SELECT kind, source, title, tracking_code, issued_at "
            "FROM documents.documents WHERE status = 'READY' "
            "ORDER BY issued_at DESC LIMIT 1"
        ).fetchone()
        kind, source, title, code, issued_at = row
        imprint = Imprint(
            tracking_code=code,
            issued_on=issued_at.date(),
            verification_url=verification_url(PUBLIC_BASE_URL, code),
        )
        return document_html(
            DocumentKind(kind), source, title=title, imprint=imprint, fonts=fonts
        )


def bare_renders(html: str, count: int) -> list[float]:
    """Render ``html`` ``count`` times with plain WeasyPrint; return each time in ms."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3u")
        times.append((time.perf_counter() - started) * 1000)
    return times


def run_once(
    service: Service,
    html: str,
    batch: Sequence[uuid.UUID],
    samples: int,
    worker_pid: int,
) -> RunResult:
    """Measure the service and the baseline on fresh placements of ``batch``.

    Throughput alternates slices of ``SLICE`` documents between the two, so
    both see the same load when other work shares the machine.
    """
    throughput_batch = batch[2 * samples :]
    bare: list[float] = []
    bare_cpu = 0.0
    service_seconds = 0.0
    service_cpu = CpuSample(0.0, 0.0, 0.0, 0.0)
    for start in range(0, len(throughput_batch), SLICE):
        chunk = throughput_batch[start : start + SLICE]
        cpu_before = time.process_time()
        bare += bare_renders(html, len(chunk))
        bare_cpu += time.process_time() - cpu_before
        before = cpu.sample(worker_pid, service.database)
        service_seconds += service.drain_seconds(chunk)
        service_cpu = service_cpu + (cpu.sample(worker_pid, service.database) - before)
    job_latencies = service.job_latencies(batch[:samples])
    request_latencies = service.request_latencies(batch[samples : 2 * samples])
    return RunResult(
        service_per_minute=len(throughput_batch) * 60 / service_seconds,
        job_p50_ms=statistics.median(job_latencies),
        request_p50_ms=statistics.median(request_latencies),
        bare_per_minute=len(bare) * 60_000 / sum(bare),
        bare_p50_ms=statistics.median(bare),
        render_p50_ms=statistics.median(service.render_ms(batch)),
        service_cpu=service_cpu,
        bare_cpu_seconds=bare_cpu,
        documents=len(throughput_batch),
    )


# Report.


def report(options: Options, results: Sequence[RunResult]) -> str:
    def med(name: str) -> float:
        return statistics.median(getattr(result, name) for result in results)

    def cpu_ms(part: str) -> float:
        return statistics.median(
            getattr(r.service_cpu, part) * 1000 / r.documents for r in results
        )

    bare_cpu_ms = statistics.median(
        r.bare_cpu_seconds * 1000 / r.documents for r in results
    )
    ratios = [r.service_per_minute / r.bare_per_minute for r in results]
    lines = [
        f"Runs: {options.runs}; per run {options.documents} certificates for "
        f"throughput in slices of {SLICE}, and {options.latency_samples} jobs and "
        f"{options.latency_samples} POST requests one at a time for latency. "
        f"Worker: --concurrency {options.concurrency}.",
        "",
        "| | documents service, 1 worker | bare WeasyPrint | service / bare |",
        "|---|---:|---:|---:|",
        f"| documents per minute | {med('service_per_minute'):.0f} | "
        f"{med('bare_per_minute'):.0f} | {statistics.median(ratios):.2f} |",
        f"| CPU ms per document | {cpu_ms('total'):.0f} | {bare_cpu_ms:.0f} | "
        f"{bare_cpu_ms / cpu_ms('total'):.2f} |",
        f"| latency p50, ms: job to READY | {med('job_p50_ms'):.0f} | "
        f"{med('bare_p50_ms'):.0f} | |",
        f"| latency p50, ms: POST to READY | {med('request_p50_ms'):.0f} | | |",
        "",
        "Service CPU ms per document: "
        f"worker {cpu_ms('worker'):.0f}, render processes {cpu_ms('render'):.0f}, "
        f"students and internships apps with the benchmark's client "
        f"{cpu_ms('this_process'):.0f}, PostgreSQL {cpu_ms('postgres'):.0f}.",
        f"Render step inside the worker (render process included), p50: "
        f"{med('render_p50_ms'):.0f} ms.",
        "",
        "Per run (service/min, bare/min, ratio): "
        + "; ".join(
            f"{r.service_per_minute:.0f}, {r.bare_per_minute:.0f}, {ratio:.2f}"
            for r, ratio in zip(results, ratios, strict=True)
        ),
        "",
        "Machine: "
        + ", ".join(f"{key} {value}" for key, value in describe_machine().items())
        + f"; load average at the end {os.getloadavg()[0]:.1f}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="Measured runs")
    parser.add_argument(
        "--documents", type=int, default=30, help="Certificates per throughput run"
    )
    parser.add_argument(
        "--latency-samples", type=int, default=10, help="Sequential requests per run"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="The worker's --concurrency (jobs in threads at once)",
    )
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    args = parser.parse_args(argv)
    options = Options(args.runs, args.documents, args.latency_samples, args.concurrency)
    logging.basicConfig(level=logging.WARNING)
    # The threaded test servers log every request at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    database_url = create_database(args.server_url, prefix="bench_documents")
    try:
        results = measure(database_url, options)
    finally:
        drop_database(database_url)
    print(report(options, results))


def measure(database_url: str, options: Options) -> list[RunResult]:
    install(database_url)
    upgrade(students.app.MIGRATIONS_DIR, database_url, "students")
    upgrade(internships.app.MIGRATIONS_DIR, database_url, "internships")
    upgrade(documents.app.MIGRATIONS_DIR, database_url, "documents")
    applications = seed(database_url, options.placements)

    with ExitStack() as stack:
        tokens = stack.enter_context(TokenFactory())
        settings = platform_settings(database_url, tokens)
        service_token = tokens.service_token("documents", expires_in=DAY)
        students_url = stack.enter_context(serving(students.app.create_app(**settings)))
        internships_url = stack.enter_context(
            serving(
                internships.app.create_app(
                    **settings,
                    students_url=students_url,
                    service_token=tokens.service_token("internships", expires_in=DAY),
                )
            )
        )
        service_settings = {
            **settings,
            "students_url": students_url,
            "internships_url": internships_url,
            "public_base_url": PUBLIC_BASE_URL,
            "service_token": service_token,
        }
        app = documents.app.create_app(**service_settings)
        env = {
            **os.environ,
            **{key.upper(): str(value) for key, value in service_settings.items()},
        }
        worker = stack.enter_context(worker_process(env, options.concurrency))

        admin = tokens.mint(Role.system_admin, subject=uuid.uuid4(), expires_in=DAY)
        service = Service(
            app.test_client(), {"Authorization": f"Bearer {admin}"}, database_url
        )
        fonts = Fonts.from_dir(app.extensions["edulink.settings"].font_dir)

        service.drain_seconds(applications[:WARMUP_DOCUMENTS])
        html = service.certificate_html(fonts)
        bare_renders(html, WARMUP_DOCUMENTS)

        results = []
        for number in range(options.runs):
            first = WARMUP_DOCUMENTS + number * options.per_run
            batch = applications[first : first + options.per_run]
            result = run_once(service, html, batch, options.latency_samples, worker.pid)
            log.warning("run %d: %s", number + 1, result)
            results.append(result)
        return results


if __name__ == "__main__":
    main()

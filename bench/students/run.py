"""Benchmark the students service against a bare Flask app that runs the same SQL.

Run from the repository root::

    .venv/bin/python -m bench.students.run

It creates a throwaway database, migrates and seeds it, checks that the
baseline sends the service's SQL and returns its JSON, starts both apps under
gunicorn with the same worker settings, and loads each endpoint with wrk.
Runs alternate between the apps so that drift in machine speed hits both.
It prints a Markdown report of the median figures and drops the database.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.common.machine import describe_machine
from bench.common.report import Comparison, facts_list, results_table
from bench.common.server import GunicornConfig, Server, gunicorn_process
from bench.common.stats import Measurement
from bench.common.wrk import run_wrk, wrk_version
from bench.students import equivalence, seed
from edulink.auth import Role
from edulink.logs import configure_logging
from edulink.migrations import upgrade
from edulink.testing.databases import create_database, drop_database
from edulink.testing.tokens import TokenFactory
from students.app import MIGRATIONS_DIR
from students.models import SCHEMA

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/postgres"
SERVICE_APP = "students.app:create_app()"
BASELINE_APP = "bench.students.baseline:create_app()"
BATCH_SIZE = 100
BATCH_COUNT = 1000
CHECKED_SAMPLES = 5
TARGET_RATIO = 0.7
# Signs pagination cursors of the throwaway service only.
CURSOR_SECRET = "bench-cursor-secret-0123456789"  # noqa: S105


@dataclass(frozen=True)
class Endpoint:
    """A request pattern: the paths wrk rotates through and the service's headers."""

    name: str
    paths: list[str]
    service_headers: dict[str, str]
    paths_file: Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.students.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--server-url",
        default=os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER_URL),
        help="PostgreSQL server on which to create the throwaway database "
        "(default: $TEST_DATABASE_URL or %(default)s)",
    )
    parser.add_argument("--institutions", type=int, default=20)
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per app")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument(
        "--warmup", type=int, default=5, help="seconds of unmeasured load per app"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=GunicornConfig.workers)
    parser.add_argument("--worker-class", default=GunicornConfig.worker_class)
    parser.add_argument(
        "--threads",
        type=int,
        default=GunicornConfig.threads,
        help="threads per gunicorn worker (gthread workers only)",
    )
    parser.add_argument("--report", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if args.students < BATCH_SIZE:
        parser.error(f"--students must be at least {BATCH_SIZE}, the batch size")
    return args


def prepare_database(url: str, *, institutions: int, students: int) -> list[uuid.UUID]:
    """Migrate and seed the database at ``url``. Returns the student ids."""
    upgrade(MIGRATIONS_DIR, url, SCHEMA)
    data = seed.generate(institutions=institutions, students=students)
    seed.load(url, data)
    return data.student_ids


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return row[0] if row else "unknown"


def _write_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def build_endpoints(
    student_ids: Sequence[uuid.UUID], tokens: TokenFactory, workdir: Path, ttl: int
) -> list[Endpoint]:
    """Build the single-read and batch-read request patterns."""
    rng = random.Random(2)
    single = [f"/api/v1/students/{student_id}" for student_id in student_ids]
    rng.shuffle(single)
    batches = []
    for _ in range(BATCH_COUNT):
        ids = rng.sample(student_ids, BATCH_SIZE)
        batches.append("/api/v1/students?ids=" + ",".join(map(str, ids)))

    admin = tokens.mint(Role.system_admin, expires_in=ttl)
    service = tokens.service_token("internships", expires_in=ttl)
    return [
        Endpoint(
            name="GET /api/v1/students/{id} (system admin)",
            paths=single,
            service_headers={"Authorization": f"Bearer {admin}"},
            paths_file=_write_lines(workdir / "single.txt", single),
        ),
        Endpoint(
            name=f"GET /api/v1/students?ids=<{BATCH_SIZE} ids> (service)",
            paths=batches,
            service_headers={"Authorization": f"Bearer {service}"},
            paths_file=_write_lines(workdir / "batch.txt", batches),
        ),
    ]


def service_settings(url: str, tokens: TokenFactory) -> dict[str, str]:
    return {
        "database_url": url,
        "jwt_issuer": tokens.issuer,
        "jwt_audience": tokens.audience,
        "jwks_file": str(tokens.jwks_path),
        "cursor_secret": CURSOR_SECRET,
    }


def check_baseline(settings: Mapping[str, str], endpoints: Sequence[Endpoint]) -> None:
    cases = [
        (path, endpoint.service_headers)
        for endpoint in endpoints
        for path in endpoint.paths[:CHECKED_SAMPLES]
    ]
    equivalence.check_baseline(settings=settings, cases=cases)


class Bench:
    """Load runs against the service and the baseline, with one set of wrk options."""

    def __init__(self, args: argparse.Namespace, servers: Mapping[str, Server]) -> None:
        self.args = args
        self.servers = servers
        self.results: dict[tuple[str, str], list[Measurement]] = {}

    def _load(self, target: str, endpoint: Endpoint, duration: int) -> Measurement:
        server = self.servers[target]
        headers = endpoint.service_headers if target == "service" else {}
        cpu_before = server.worker_cpu_seconds()
        result = run_wrk(
            server.url,
            endpoint.paths_file,
            duration_s=duration,
            connections=self.args.connections,
            threads=self.args.wrk_threads,
            headers=headers,
        )
        return Measurement(result, server.worker_cpu_seconds() - cpu_before)

    def warm_up(self, endpoints: Sequence[Endpoint]) -> None:
        for endpoint in endpoints:
            for target in self.servers:
                self._load(target, endpoint, self.args.warmup)

    def measure(self, endpoints: Sequence[Endpoint]) -> None:
        """Run each endpoint on each app ``runs`` times, flipping the app order."""
        targets = list(self.servers)
        for run in range(self.args.runs):
            order = targets if run % 2 == 0 else targets[::-1]
            for endpoint in endpoints:
                for target in order:
                    measurement = self._load(target, endpoint, self.args.duration)
                    self.results.setdefault((endpoint.name, target), []).append(
                        measurement
                    )
                    log.info(
                        "run %d %s on %s: %.0f req/s, p50 %.1f ms, p99 %.1f ms, "
                        "worker CPU %.2f ms/request",
                        run + 1,
                        endpoint.name,
                        target,
                        measurement.requests_per_second,
                        measurement.wrk.p50_ms,
                        measurement.wrk.p99_ms,
                        measurement.worker_cpu_ms_per_request,
                    )

    def comparisons(self, endpoints: Sequence[Endpoint]) -> list[Comparison]:
        return [
            Comparison(
                endpoint=endpoint.name,
                app_runs=self.results[(endpoint.name, "service")],
                baseline_runs=self.results[(endpoint.name, "baseline")],
            )
            for endpoint in endpoints
        ]


def run_servers(
    args: argparse.Namespace,
    settings: Mapping[str, str],
    endpoints: Sequence[Endpoint],
    workdir: Path,
) -> list[Comparison]:
    """Start both apps under gunicorn, warm them up and measure them."""
    config = GunicornConfig(args.workers, args.worker_class, args.threads)
    env = {name.upper(): value for name, value in settings.items()}
    ready = endpoints[0]
    with (
        gunicorn_process(
            SERVICE_APP,
            name="service",
            config=config,
            env=env,
            log_dir=workdir,
            ready_path=ready.paths[0],
            ready_headers=ready.service_headers,
        ) as service,
        gunicorn_process(
            BASELINE_APP,
            name="baseline",
            config=config,
            env=env,
            log_dir=workdir,
            ready_path=ready.paths[0],
        ) as baseline,
    ):
        bench = Bench(args, {"service": service, "baseline": baseline})
        log.info("warming up for %d s per app and endpoint", args.warmup)
        bench.warm_up(endpoints)
        bench.measure(endpoints)
    return bench.comparisons(endpoints)


def render_report(
    args: argparse.Namespace,
    comparisons: Sequence[Comparison],
    postgres: str,
    load_averages: tuple[float, float],
) -> str:
    config = GunicornConfig(args.workers, args.worker_class, args.threads)
    setup = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **describe_machine(),
        "PostgreSQL": postgres,
        "load generator": f"{wrk_version()}, {args.connections} connections, "
        f"{args.wrk_threads} threads, on the same machine",
        "gunicorn": config.describe() + " for both apps",
        "data": f"{args.institutions} institutions, {args.students} students, "
        f"one affiliation claim each; batch requests ask for {BATCH_SIZE} "
        "random ids",
        "runs": f"{args.runs} runs of {args.duration} s per app and endpoint after "
        f"a {args.warmup} s warm-up, app order flipped every run",
        "1-minute load average before and after": "{:.1f}, {:.1f}".format(
            *load_averages
        ),
    }
    table = results_table(comparisons, app_name="service", target_ratio=TARGET_RATIO)
    return facts_list(setup) + "\n\n" + table + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("bench", "INFO")
    measured_seconds = 2 * 2 * (args.warmup + args.runs * args.duration)
    token_ttl = 2 * measured_seconds + 600

    url = create_database(args.server_url, prefix="edulink_bench")
    log.info("created database %s", url.rsplit("/", 1)[-1])
    try:
        student_ids = prepare_database(
            url, institutions=args.institutions, students=args.students
        )
        with (
            TokenFactory() as tokens,
            tempfile.TemporaryDirectory(prefix="edulink-bench-") as directory,
        ):
            workdir = Path(directory)
            settings = service_settings(url, tokens)
            endpoints = build_endpoints(student_ids, tokens, workdir, token_ttl)
            check_baseline(settings, endpoints)
            configure_logging("bench", "INFO")
            load_before = os.getloadavg()[0]
            comparisons = run_servers(args, settings, endpoints, workdir)
            load_after = os.getloadavg()[0]
        report = render_report(
            args, comparisons, postgres_version(url), (load_before, load_after)
        )
    finally:
        drop_database(url)
        log.info("dropped the benchmark database")

    print(report)
    if args.report:
        args.report.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark public search and an employer's application list at two data sizes.

Run from the repository root::

    .venv/bin/python -m bench.internships.run

Both sizes (10,000 and 1,000,000 applications) share the same 10,000
opportunities. For each size it creates a throwaway database, migrates and
seeds it, and starts the internships app under gunicorn. It then loads each
endpoint with wrk at 16 connections, alternating endpoints over rounds. It prints a
Markdown report of the median p50 and p99 latencies and the ratio of the
large size's p50 to the small one's, then drops the databases.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import students.app
from bench.common.machine import describe_machine
from bench.common.server import GunicornConfig, gunicorn_server
from bench.common.wrk import WrkResult, run_wrk, wrk_version
from bench.internships import seed
from edulink.auth import Role
from edulink.logs import configure_logging
from edulink.migrations import upgrade
from edulink.testing.databases import create_database, drop_database
from edulink.testing.tokens import TokenFactory
from internships.app import MIGRATIONS_DIR

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/postgres"
APP_SPEC = "internships.app:create_app()"
SIZES = {"10k": seed.SeedSize(students=1_000), "1M": seed.SeedSize(students=100_000)}
SEARCHES = [
    "",
    "q=software",
    "q=data%20intern",
    "q=cloud%20-security",
    "skills=python,sql",
    "skills=react",
    "location_type=remote",
    "location=Nairobi",
    "q=research&location_type=hybrid",
    "skills=linux&location=Kisumu",
]
TARGET_RATIO = 2.0


def search_paths() -> list[str]:
    return [f"/api/v1/opportunities?{query}&limit=20" for query in SEARCHES]


def employer_paths() -> list[str]:
    return [
        f"/api/v1/employers/{seed.entity_id('employer', number)}/applications?limit=20"
        for number in range(1, seed.EMPLOYERS + 1)
    ]


def write_paths(directory: Path, name: str, paths: Sequence[str]) -> Path:
    path = directory / f"{name}.txt"
    path.write_text("\n".join(paths) + "\n", encoding="utf-8")
    return path


def measure_size(
    size_name: str,
    size: seed.SeedSize,
    *,
    server_url: str,
    tokens: TokenFactory,
    work_dir: Path,
    rounds: int,
    duration: int,
) -> dict[str, list[WrkResult]]:
    """Seed one database and return the wrk results of each endpoint."""
    url = create_database(server_url, prefix=f"edulink_bench_internships_{size_name}")
    try:
        upgrade(students.app.MIGRATIONS_DIR, url, "students")
        upgrade(MIGRATIONS_DIR, url, "internships")
        timings = seed.seed(url, size)
        log.info("seeded %s: %s", size_name, timings)
        employer_token = tokens.mint(
            Role.employer_admin,
            org_ids=[
                seed.entity_id("employer", n) for n in range(1, seed.EMPLOYERS + 1)
            ],
            expires_in=3600,
        )
        env = {
            "DATABASE_URL": url,
            "JWT_ISSUER": tokens.issuer,
            "JWT_AUDIENCE": tokens.audience,
            "JWKS_FILE": str(tokens.jwks_path),
            "CURSOR_SECRET": "bench-cursor-secret-0123456789",
            "STUDENTS_URL": "http://127.0.0.1:9",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "8",
        }
        endpoints = {
            "search": (write_paths(work_dir, "search", search_paths()), {}),
            "employer applications": (
                write_paths(work_dir, "employer", employer_paths()),
                {"Authorization": f"Bearer {employer_token}"},
            ),
        }
        results: dict[str, list[WrkResult]] = {name: [] for name in endpoints}
        config = GunicornConfig(workers=2, worker_class="gthread", threads=8)
        with gunicorn_server(
            APP_SPEC,
            name=f"internships-{size_name}",
            config=config,
            env=env,
            log_dir=work_dir,
            ready_path="/readyz",
        ) as base_url:
            for round_number in range(rounds + 1):
                for name, (paths_file, headers) in endpoints.items():
                    result = run_wrk(
                        base_url,
                        paths_file,
                        duration_s=duration if round_number else 3,
                        connections=16,
                        threads=2,
                        headers=headers,
                    )
                    # Round 0 warms caches and connection pools and is dropped.
                    if round_number:
                        results[name].append(result)
                        log.info(
                            "%s %s round %d: p50 %.1f ms, %.0f req/s",
                            size_name,
                            name,
                            round_number,
                            result.p50_ms,
                            result.requests_per_second,
                        )
        return results
    finally:
        drop_database(url)


def report(all_results: dict[str, dict[str, list[WrkResult]]], rounds: int) -> str:
    lines = [
        "| endpoint | applications | p50 ms (median) | p99 ms (median) "
        "| req/s (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    p50s: dict[tuple[str, str], float] = {}
    for size_name, results in all_results.items():
        for endpoint, runs in results.items():
            p50 = statistics.median(run.p50_ms for run in runs)
            p99 = statistics.median(run.p99_ms for run in runs)
            rate = statistics.median(run.requests_per_second for run in runs)
            p50s[(endpoint, size_name)] = p50
            lines.append(
                f"| {endpoint} | {size_name} | {p50:.1f} | {p99:.1f} | {rate:.0f} |"
            )
    lines += [
        "",
        "| endpoint | p50 1M / p50 10k | target | met |",
        "|---|---:|---:|---|",
    ]
    for endpoint in ("search", "employer applications"):
        if (endpoint, "1M") not in p50s or (endpoint, "10k") not in p50s:
            continue
        ratio = p50s[(endpoint, "1M")] / p50s[(endpoint, "10k")]
        met = "yes" if ratio <= TARGET_RATIO else "no"
        lines.append(f"| {endpoint} | {ratio:.2f} | <= {TARGET_RATIO:.1f} | {met} |")
    facts = describe_machine()
    facts["wrk"] = wrk_version()
    facts["rounds"] = f"{rounds} of each endpoint per size, after one warm-up round"
    lines += ["", *(f"- {name}: {value}" for name, value in facts.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    parser.add_argument("--rounds", type=int, default=3, help="Measured wrk runs")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per run")
    parser.add_argument(
        "--sizes", default="10k,1M", help="Comma-separated sizes: 10k, 1M"
    )
    args = parser.parse_args(argv)
    configure_logging("bench", "INFO")

    all_results = {}
    with TokenFactory() as tokens, tempfile.TemporaryDirectory() as work_dir:
        for size_name in args.sizes.split(","):
            all_results[size_name] = measure_size(
                size_name,
                SIZES[size_name],
                server_url=args.server_url,
                tokens=tokens,
                work_dir=Path(work_dir),
                rounds=args.rounds,
                duration=args.duration,
            )
    print(report(all_results, args.rounds))


if __name__ == "__main__":
    main()

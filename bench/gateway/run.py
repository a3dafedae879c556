"""Benchmark the gateway's overhead and the limiter's precision.

A list endpoint is measured through nginx and the policy check, and against
the same service called directly, in the same run. Then the limiter is
hammered to count how many requests it admits above its limit.

Usage (from the repository root, PostgreSQL on 127.0.0.1:5432, wrk installed):

    .venv/bin/python bench/gateway/run.py [--rounds 5] [--duration 10]

Steps: create a throwaway database, migrate the students and gateway
schemas, seed 40 active institutions, start the students service and the
gateway app (gunicorn, each 2 gthread workers of 4 threads) and nginx
(1 worker), sign up and sign in a user through the gateway, then
alternate wrk runs (16 connections, 2 threads) on ``GET /api/v1/institutions``
directly and through nginx. Limits are raised so that none triggers. Finally
the gateway restarts with ``authenticated`` limited to ``--limit`` per hour and
wrk hammers the same URL; every 200 beyond the limit counts as over-admitted.
Prints a Markdown summary and writes the raw numbers to
``var/bench/gateway.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "gateway")]

from bench.common.machine import describe_machine  # noqa: E402
from bench.common.wrk import wrk_version  # noqa: E402
from edulink.migrations import upgrade  # noqa: E402
from edulink.testing.databases import create_database, drop_database  # noqa: E402
from gateway.nginx import NginxSettings, running_nginx  # noqa: E402

SERVER_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres"
)
ISSUER = "http://bench.edulink.test"
AUDIENCE = "edulink"
CONNECTIONS = 16
WRK_THREADS = 2
PATH = "/api/v1/institutions?limit=20"
HIGH_LIMITS = {"anonymous": "1000000/minute", "authenticated": "1000000/minute"}
STATUS_SCRIPT = Path(__file__).with_name("count_statuses.lua")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def base_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "CURSOR_SECRET": "bench-cursor-secret-0123456789",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "EMAIL_DELIVERY": "memory",
        "PYTHONPATH": str(ROOT / "gateway"),
    }


@contextmanager
def gunicorn(app: str, port: int, env: dict[str, str], *args: str) -> Iterator[None]:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        # gunicorn 27 opens a control socket at one path per user by default,
        # which other gunicorn processes on the machine would share.
        "--no-control-socket",
        *args,
        app,
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", timeout=60)
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_until_ready(url: str, timeout: float) -> None:
    """Poll ``url`` until it returns 200; workers import the app after binding."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not return 200 within {timeout} s")
        time.sleep(0.2)


def seed_institutions(database_url: str, count: int) -> None:
    with psycopg.connect(database_url) as connection:
        for number in range(count):
            connection.execute(
                "INSERT INTO students.institutions (id, name, email_domains, status, "
                "version) VALUES (%s, %s, %s, 'active', 1)",
                (uuid.uuid4(), f"Institution {number:03d}", [f"inst{number}.ac.ke"]),
            )


def sign_in(app_url: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
    password = "benchmark password"  # noqa: S105 - a throwaway bench account
    session = requests.Session()
    session.trust_env = False
    created = session.post(
        f"{app_url}/api/v1/accounts",
        json={"email": email, "password": password, "name": "Bench"},
        timeout=10,
    )
    created.raise_for_status()
    response = session.post(
        f"{app_url}/api/v1/auth/login",
        json={"email": email, "password": password},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _milliseconds(text: str) -> float:
    found = re.match(r"([\d.]+)(us|ms|s)", text)
    if found is None:
        raise RuntimeError(f"unexpected wrk latency {text!r}")
    number, unit = found.groups()
    return float(number) * _UNITS[unit]


def wrk(url: str, token: str, seconds: int, script: Path | None = None) -> dict:
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True
    ).stdout
    if "Latency Distribution" not in output or "Requests/sec" not in output:
        raise RuntimeError(f"wrk measured nothing on {url}:\n{output}")
    result = {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        "p50_ms": _milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M)[1]),
        "p99_ms": _milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M)[1]),
        "non_2xx": int(m[1]) if (m := re.search(r"Non-2xx.*?(\d+)", output)) else 0,
        "statuses": {
            int(code): int(count)
            for code, count in re.findall(r"^status (\d+) (\d+)$", output, re.M)
        },
    }
    return result


def machine() -> str:
    facts = {**describe_machine(), "wrk": wrk_version()}
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    facts["load average at start (1, 5, 15 min)"] = load
    return "; ".join(f"{name} {value}" for name, value in facts.items())


def throughput(args, env, urls, token) -> dict:
    rounds = {"direct": [], "gateway": []}
    wrk(urls["direct"], token, 2)
    wrk(urls["gateway"], token, 2)
    for _ in range(args.rounds):
        for name in ("direct", "gateway"):
            rounds[name].append(wrk(urls[name], token, args.duration))
    summary = {}
    for name, runs in rounds.items():
        summary[name] = {
            "requests_per_second": statistics.median(
                run["requests_per_second"] for run in runs
            ),
            "p50_ms": statistics.median(run["p50_ms"] for run in runs),
            "p99_ms": statistics.median(run["p99_ms"] for run in runs),
            "non_2xx": sum(run["non_2xx"] for run in runs),
        }
    summary["throughput_ratio"] = (
        summary["gateway"]["requests_per_second"]
        / summary["direct"]["requests_per_second"]
    )
    summary["p99_ratio"] = summary["gateway"]["p99_ms"] / summary["direct"]["p99_ms"]
    return {"rounds": rounds, "summary": summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--limit", type=int, default=300, help="per-hour limit")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    database_url = create_database(SERVER_URL, prefix="edulink_bench")
    runtime = Path(tempfile.mkdtemp(prefix="edulink-bench-"))
    try:
        return run(args, database_url, runtime)
    finally:
        drop_database(database_url)
        shutil.rmtree(runtime, ignore_errors=True)


def run(args, database_url: str, runtime: Path) -> int:
    from gateway.app import MIGRATIONS_DIR as GATEWAY_MIGRATIONS
    from students.app import MIGRATIONS_DIR as STUDENTS_MIGRATIONS

    upgrade(STUDENTS_MIGRATIONS, database_url, "students")
    upgrade(GATEWAY_MIGRATIONS, database_url, "gateway")
    seed_institutions(database_url, 40)

    ports = {name: free_port() for name in ("students", "app", "nginx")}
    app_url = f"http://127.0.0.1:{ports['app']}"
    env = base_env(database_url)
    students_env = {**env, "JWKS_URL": f"{app_url}/.well-known/jwks.json"}
    nginx = NginxSettings(
        port=ports["nginx"],
        app_upstream=f"127.0.0.1:{ports['app']}",
        students_upstream=f"127.0.0.1:{ports['students']}",
        worker_processes="1",
        access_log="off",
        nginx_user="nobody nogroup" if os.geteuid() == 0 else None,
    )
    urls = {
        "direct": f"http://127.0.0.1:{ports['students']}{PATH}",
        "gateway": f"http://127.0.0.1:{ports['nginx']}{PATH}",
    }
    app_args = ("--workers", "2", "--worker-class", "gthread", "--threads", "4")
    results: dict = {"machine": machine(), "connections": CONNECTIONS}

    with gunicorn(
        "students.app:create_app()", ports["students"], students_env, *app_args
    ):
        limits_env = {**env, "RATELIMIT_OVERRIDES": json.dumps(HIGH_LIMITS)}
        with (
            gunicorn("gateway.app:create_app()", ports["app"], limits_env, *app_args),
            running_nginx(nginx, runtime / "nginx"),
        ):
            token = sign_in(app_url)
            results["throughput"] = throughput(args, env, urls, token)

        limited = {"authenticated": f"{args.limit}/hour", "anonymous": "1000000/minute"}
        limited_env = {**env, "RATELIMIT_OVERRIDES": json.dumps(limited)}
        with (
            gunicorn("gateway.app:create_app()", ports["app"], limited_env, *app_args),
            running_nginx(nginx, runtime / "nginx-limited"),
        ):
            token = sign_in(app_url)
            hammer = wrk(urls["gateway"], token, 5, STATUS_SCRIPT)
        admitted = hammer["statuses"].get(200, 0)
        results["admission"] = {
            "limit": args.limit,
            "statuses": hammer["statuses"],
            "admitted": admitted,
            "over_admitted": max(0, admitted - args.limit),
        }

    output = ROOT / "var" / "bench" / "gateway.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print_summary(results, args)
    return 0


def print_summary(results: dict, args) -> None:
    summary = results["throughput"]["summary"]
    direct, gateway = summary["direct"], summary["gateway"]
    admission = results["admission"]
    print(f"\nmachine: {results['machine']}")
    print(
        f"wrk: {CONNECTIONS} connections, {WRK_THREADS} threads, "
        f"{args.rounds} rounds of {args.duration} s each, medians\n"
    )
    print("| path | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|")
    for name, row in (("direct", direct), ("through nginx + policy", gateway)):
        print(
            f"| {name} | {row['requests_per_second']:.0f} | {row['p50_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {row['non_2xx']} |"
        )
    print(
        f"\nthroughput ratio {summary['throughput_ratio']:.2f} (target >= 0.6), "
        f"p99 ratio {summary['p99_ratio']:.2f} (target <= 2)"
    )
    print(
        f"limit {admission['limit']}/hour: admitted {admission['admitted']}, "
        f"over-admitted {admission['over_admitted']}, statuses {admission['statuses']}"
    )


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark real-time delivery and the alert fan-out of the notifications service.

Run from the repository root (PostgreSQL on 127.0.0.1:5432)::

    .venv/bin/python -m bench.notifications.run [--samples 200] [--repeats 3]

It creates a throwaway database, migrates the students, internships and
notifications schemas, and starts the development Pusher server, the
notifications worker and the three apps under gunicorn, all on loopback.
A Python WebSocket client (``notifications.pusher_server.client``) receives
the events. Three measurements, each repeated ``--repeats`` times:

- ``enqueue``: from committing a ``notifications.notify`` job to the
  ``notification.created`` event at the client subscribed to the user's
  private channel.
- ``status change``: from sending an application transition (SHORTLISTED,
  then REJECTED) through the nginx gateway to that event. The gateway's
  policy check verifies the token and counts the request (its app runs with
  ``RATELIMIT_OVERRIDES`` high enough to admit every request). Without nginx
  on the PATH, or with ``--direct``, the request goes to the internships app
  directly and the report's label shows it.
- ``alert``: a system admin posts an alert with ``--users`` recipients. It
  measures the time until every inbox row exists and the client on the
  alerts channel has the event.

It prints a Markdown report of the medians and drops the database.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import internships.app
import notifications.app
import students.app
from bench.common.machine import describe_machine
from bench.common.server import GunicornConfig, Server, free_port, gunicorn_process
from edulink.auth import Role
from edulink.db import create_engine
from edulink.jobs import Queue
from edulink.jobs.schema import install
from edulink.logs import configure_logging
from edulink.migrations import upgrade
from edulink.testing.databases import create_database, drop_database
from edulink.testing.tokens import TokenFactory
from notifications.contracts import NOTIFY
from notifications.pusher_server.client import Message, PusherTestClient
from notifications.realtime import ALERTS_CHANNEL, sign_subscription, user_channel

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/postgres"
PUSHER = {"PUSHER_APP_ID": "9001", "PUSHER_KEY": "bench-key"}
# Pause between samples, so that each one meets an idle worker.
PAUSE_SECONDS = 0.02
EVENT_TIMEOUT = 30.0


@contextmanager
def process(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    ready: str,
    cwd: Path = REPO_ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; wait for ``ready`` in its output."""
    with log_path.open("wb") as output:
        child = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 30
        while ready not in log_path.read_text(errors="replace"):
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[2:4]} did not start; see {log_path}")
            time.sleep(0.1)
        yield child
    finally:
        child.terminate()
        child.wait(timeout=30)


class Bench:
    """The running stack and the helpers that drive it."""

    def __init__(self, database_url: str, tokens: TokenFactory, secret: str) -> None:
        self.database_url = database_url
        self.tokens = tokens
        self.secret = secret
        self.http = requests.Session()
        self.http.trust_env = False
        engine = create_engine(database_url, pool_size=2)
        self.sessions: sessionmaker[Session] = sessionmaker(engine)
        self.client: PusherTestClient | None = None
        self.urls: dict[str, str] = {}

    def headers(self, role: Role, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.mint(role, **claims)}"}

    def subscribe(self, channel: str) -> None:
        assert self.client is not None
        assert self.client.socket_id is not None
        signature = sign_subscription(self.secret, self.client.socket_id, channel)
        auth = (
            f"{PUSHER['PUSHER_KEY']}:{signature}"
            if channel.startswith("private-")
            else None
        )
        answer = self.client.subscribe(channel, auth=auth)
        if answer.event != "pusher_internal:subscription_succeeded":
            raise RuntimeError(f"subscribing to {channel} failed: {answer.data}")

    def wait_notification(self, **fields: str) -> Message:
        assert self.client is not None

        def matches(message: Message) -> bool:
            if message.event != "notification.created":
                return False
            notification = message.data["notification"]
            return all(notification.get(k) == v for k, v in fields.items())

        return self.client.wait_for(matches, timeout=EVENT_TIMEOUT)

    def post(self, service: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        response = self.http.post(
            self.urls[service] + path, json=body, headers=headers, timeout=60
        )
        if response.status_code >= 300:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return response


def measure_enqueue(bench: Bench, samples: int) -> list[float]:
    """Return milliseconds from committing a notify job to its event."""
    user_id = uuid.uuid4()
    bench.subscribe(user_channel(user_id))
    latencies = []
    for number in range(samples):
        title = f"sample {number} {uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        with bench.sessions.begin() as session:
            Queue("notifications", session=session).enqueue_call(
                NOTIFY,
                kwargs={
                    "recipient_user_id": user_id,
                    "kind": "application_status_changed",
                    "title": title,
                    "body": "Benchmark notification.",
                    "entity_type": "application",
                    "entity_id": uuid.uuid4(),
                },
            )
        event = bench.wait_notification(title=title)
        latencies.append((event.received_at - started) * 1000)
        time.sleep(PAUSE_SECONDS)
    return latencies


def seed_applications(
    bench: Bench, count: int
) -> tuple[list[tuple[str, uuid.UUID]], dict[str, str]]:
    """Create ``count`` students who applied to one OPEN opportunity.

    Returns (application id, student user id) pairs and the employer
    admin's headers.
    """
    admin = bench.headers(Role.system_admin)
    employer = bench.post(
        "internships",
        "/api/v1/employers",
        {
            "name": f"Bench {uuid.uuid4().hex[:6]}",
            "contact_email": "b@bench.example",
            "status": "active",
        },
        admin,
    ).json()
    staff = bench.headers(Role.employer_admin, org_ids=[employer["id"]])
    deadline = datetime.now(UTC) + timedelta(days=7)
    start = (deadline + timedelta(days=14)).date()
    opportunity = bench.post(
        "internships",
        "/api/v1/opportunities",
        {
            "employer_id": employer["id"],
            "title": "Benchmark intern",
            "description": "Measures notification latency.",
            "skills": ["Python"],
            "location": "Nairobi",
            "location_type": "remote",
            "capacity": 1,
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=90)).isoformat(),
            "deadline": deadline.isoformat(),
        },
        staff,
    )
    url = f"{bench.urls['internships']}/api/v1/opportunities/{opportunity.json()['id']}"
    opened = bench.http.patch(
        url,
        json={"status": "OPEN"},
        headers={**staff, "If-Match": opportunity.headers["ETag"]},
        timeout=30,
    )
    opened.raise_for_status()

    pairs = []
    for number in range(count):
        user_id = uuid.uuid4()
        student = bench.headers(
            Role.student, subject=user_id, email=f"s{number}@bench.example"
        )
        bench.post(
            "students",
            "/api/v1/students/me",
            {"full_name": f"Student {number}"},
            student,
        )
        application = bench.post(
            "internships",
            f"/api/v1/opportunities/{opened.json()['id']}/applications",
            {"cover_letter": "Benchmark."},
            student,
        ).json()
        pairs.append((application["id"], user_id))
    return pairs, staff


def measure_status_changes(bench: Bench, count: int) -> list[float]:
    """Return milliseconds from a transition request to the student's event."""
    pairs, staff = seed_applications(bench, count)
    for _application_id, user_id in pairs:
        bench.subscribe(user_channel(user_id))
    latencies = []
    for application_id, _user_id in pairs:
        for target in ("SHORTLISTED", "REJECTED"):
            url = f"{bench.urls['entry']}/api/v1/applications/{application_id}"
            etag = bench.http.get(url, headers=staff, timeout=30).headers["ETag"]
            body = {"to": target}
            if target == "REJECTED":
                body["reason"] = "Benchmark."
            started = time.monotonic()
            response = bench.http.post(
                f"{url}/transitions",
                json=body,
                headers={**staff, "If-Match": etag},
                timeout=30,
            )
            if response.status_code != 200:
                raise RuntimeError(f"{target}: {response.status_code} {response.text}")
            event = bench.wait_notification(entity_id=application_id)
            latencies.append((event.received_at - started) * 1000)
            bench.client.messages.clear()  # type: ignore[union-attr]
            time.sleep(PAUSE_SECONDS)
    return latencies


def measure_alert(bench: Bench, users: int) -> dict[str, float]:
    """Post one alert to ``users`` inboxes; return the times to each milestone."""
    user_ids = [str(uuid.uuid4()) for _ in range(users)]
    body = {
        "severity": "warning",
        "message": "Benchmark alert",
        "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "user_ids": user_ids,
    }
    started = time.monotonic()
    response = bench.post(
        "notifications", "/api/v1/alerts", body, bench.headers(Role.system_admin)
    )
    answered = time.monotonic()

    alert_id = response.json()["id"]
    assert bench.client is not None
    event = bench.client.wait_for(
        lambda m: m.event == "alert.created" and m.data["alert"]["id"] == alert_id,
        timeout=EVENT_TIMEOUT,
    )

    count_rows = sa.text(
        "SELECT count(*) FROM notifications.notifications WHERE entity_id = :id"
    )
    deadline = started + 120
    while True:
        with bench.sessions() as session:
            rows = session.execute(count_rows, {"id": alert_id}).scalar_one()
        if rows == users:
            all_rows = time.monotonic()
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {rows} of {users} inbox rows after 120 s")
        time.sleep(0.005)
    return {
        "request_ms": (answered - started) * 1000,
        "event_ms": (event.received_at - started) * 1000,
        "rows_ms": (all_rows - started) * 1000,
        "done_ms": (max(all_rows, event.received_at) - started) * 1000,
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def environment(
    database_url: str, tokens: TokenFactory, ports: dict[str, int], secret: str
) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url,
        "JWT_ISSUER": tokens.issuer,
        "JWT_AUDIENCE": tokens.audience,
        "JWKS_FILE": str(tokens.jwks_path),
        "CURSOR_SECRET": "bench-cursor-secret-0123456789",
        "LOG_LEVEL": "WARNING",
        **PUSHER,
        "PUSHER_SECRET": secret,
        "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(ports["http"]),
        "PUSHER_SSL": "false",
        "EMAIL_BACKEND": "memory",
        "SERVICE_TOKEN": tokens.service_token("bench", expires_in=24 * 3600),
    }


def migrate(database_url: str) -> None:
    install(database_url)
    upgrade(students.app.MIGRATIONS_DIR, database_url, "students")
    upgrade(internships.app.MIGRATIONS_DIR, database_url, "internships")
    upgrade(notifications.app.MIGRATIONS_DIR, database_url, "notifications")


HIGH_LIMITS = '{"anonymous": "1000000/minute", "authenticated": "1000000/minute"}'


@contextmanager
def gateway(
    env: dict[str, str], servers: dict[str, Server], log_dir: Path
) -> Iterator[str]:
    """Run the gateway app and nginx in front of the apps; yield nginx's URL.

    Both run from ``log_dir``, because at the repository root the gateway/
    project folder would shadow the installed gateway package.
    """
    app_port, nginx_port = free_port(), free_port()
    gateway_env = {
        **env,
        "PYTHONPATH": "",
        "JWKS_EXTRA_FILE": env["JWKS_FILE"],
        "RATELIMIT_OVERRIDES": HIGH_LIMITS,
        "EMAIL_DELIVERY": "memory",
        "GATEWAY_PORT": str(nginx_port),
        "GATEWAY_APP_UPSTREAM": f"127.0.0.1:{app_port}",
        "GATEWAY_WORKER_PROCESSES": "1",
        "GATEWAY_ACCESS_LOG": "off",
    }
    for name, server in servers.items():
        gateway_env[f"GATEWAY_{name.upper()}_UPSTREAM"] = server.url.split("//")[1]
    if os.geteuid() == 0:
        gateway_env["GATEWAY_NGINX_USER"] = "nobody nogroup"

    flask = [sys.executable, "-m", "flask", "--app", "gateway.app:create_app"]
    subprocess.run(
        [*flask, "db", "upgrade"],
        cwd=log_dir,
        env=gateway_env,
        check=True,
        capture_output=True,
    )
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        f"--bind=127.0.0.1:{app_port}",
        "--workers=2",
        "--no-control-socket",
        "gateway.app:create_app()",
    ]
    nginx = [sys.executable, "-m", "gateway.nginx", "run"]
    nginx.append(f"--runtime-dir={log_dir / 'nginx'}")
    gateway_log = log_dir / "gateway.log"
    with (
        process(gunicorn, gateway_env, gateway_log, "Booting worker", log_dir),
        process(nginx, gateway_env, log_dir / "nginx.log", "", log_dir),
    ):
        url = f"http://127.0.0.1:{nginx_port}"
        wait_for_ok(f"{url}/.well-known/jwks.json", log_dir)
        yield url


def wait_for_ok(url: str, log_dir: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not return 200; see the logs in {log_dir}")
        time.sleep(0.2)


def start_stack(
    stack: ExitStack, env: dict[str, str], ports: dict[str, int], log_dir: Path
) -> dict[str, Server]:
    python = sys.executable
    stack.enter_context(
        process(
            [
                python,
                "-m",
                "notifications.pusher_server",
                f"--ws-port={ports['ws']}",
                f"--http-port={ports['http']}",
                "--log-level=INFO",
            ],
            env,
            log_dir / "pusher.log",
            "pusher server for app",
        )
    )
    stack.enter_context(
        process(
            [
                python,
                "-m",
                "flask",
                "--app",
                "notifications.app:create_app",
                "worker",
                "--concurrency=4",
            ],
            {**env, "LOG_LEVEL": "INFO"},
            log_dir / "worker.log",
            "started on queue",
        )
    )
    config = GunicornConfig()
    servers = {}
    servers["students"] = stack.enter_context(
        gunicorn_process(
            "students.app:create_app()",
            name="students",
            config=config,
            env=env,
            log_dir=log_dir,
            ready_path="/readyz",
        )
    )
    internships_env = {**env, "STUDENTS_URL": servers["students"].url}
    servers["internships"] = stack.enter_context(
        gunicorn_process(
            "internships.app:create_app()",
            name="internships",
            config=config,
            env=internships_env,
            log_dir=log_dir,
            ready_path="/readyz",
        )
    )
    servers["notifications"] = stack.enter_context(
        gunicorn_process(
            "notifications.app:create_app()",
            name="notifications",
            config=config,
            env=env,
            log_dir=log_dir,
            ready_path="/readyz",
        )
    )
    return servers


def run(args: argparse.Namespace) -> dict[str, Any]:
    database_url = create_database(args.server_url)
    secret = uuid.uuid4().hex
    results: dict[str, Any] = {"enqueue": [], "status": [], "alert": []}
    try:
        migrate(database_url)
        with TokenFactory() as tokens, ExitStack() as stack:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            ports = {"ws": free_port(), "http": free_port()}
            env = environment(database_url, tokens, ports, secret)
            servers = start_stack(stack, env, ports, log_dir)
            bench = Bench(database_url, tokens, secret)
            bench.urls = {name: server.url for name, server in servers.items()}
            bench.urls["entry"] = servers["internships"].url
            if not args.direct:
                bench.urls["entry"] = stack.enter_context(
                    gateway(env, servers, log_dir)
                )
            bench.client = stack.enter_context(
                PusherTestClient(f"ws://127.0.0.1:{ports['ws']}", PUSHER["PUSHER_KEY"])
            )
            bench.subscribe(ALERTS_CHANNEL)
            for repeat in range(args.repeats):
                log.warning("repeat %d of %d", repeat + 1, args.repeats)
                results["enqueue"].append(measure_enqueue(bench, args.samples))
                results["status"].append(
                    measure_status_changes(bench, args.samples // 2)
                )
                results["alert"].append(measure_alert(bench, args.users))
    finally:
        drop_database(database_url)
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"Command: `.venv/bin/python -m bench.notifications.run --samples "
        f"{args.samples} --repeats {args.repeats} --users {args.users}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in describe_machine().items()),
        "",
        "| measurement | samples per run | p50 ms | p95 ms | p95 range over runs |",
        "|---|---|---|---|---|",
    ]
    path = "to internships" if args.direct else "through nginx"
    for key, label in (
        ("enqueue", "notify job committed -> WebSocket event"),
        ("status", f"transition request {path} -> WebSocket event"),
    ):
        runs = results[key]
        p50s = [percentile(run, 0.50) for run in runs]
        p95s = [percentile(run, 0.95) for run in runs]
        lines.append(
            f"| {label} | {len(runs[0])} | {statistics.median(p50s):.1f} | "
            f"{statistics.median(p95s):.1f} | {min(p95s):.1f} to {max(p95s):.1f} |"
        )
    lines += [
        "",
        f"Alert to {args.users} users ({len(results['alert'])} runs, medians):",
        "",
        "| milestone | ms after the POST was sent |",
        "|---|---|",
    ]
    for key, label in (
        ("request_ms", "POST /api/v1/alerts answered (201)"),
        ("event_ms", "alert event at the WebSocket client"),
        ("rows_ms", f"all {args.users} inbox rows committed"),
        ("done_ms", "both"),
    ):
        values = [run[key] for run in results["alert"]]
        lines.append(
            f"| {label} | {statistics.median(values):.0f} "
            f"(runs: {', '.join(f'{v:.0f}' for v in values)}) |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--samples",
        type=int,
        default=200,
        help="events measured per run and path (default 200)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs (default 3)")
    parser.add_argument(
        "--users", type=int, default=10_000, help="alert recipients (default 10000)"
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        default=shutil.which("nginx") is None,
        help="send transitions to the internships app, not through nginx "
        "(the default when nginx is not installed)",
    )
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER_URL)
    )
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")
    print(report(run(args), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run every Edulink app in this checkout on 127.0.0.1, for local development.

It creates the database if it is missing, installs the job tables,
migrates each service and loads the demo data of ``seed_demo.py`` once
(``SEED_DEMO=0`` skips it). Then it starts one gunicorn per app, plus the
app's worker if its CLI has a ``worker`` command, an SMTP sink and the development
Pusher server when the notifications service exists, and the nginx gateway
on GATEWAY_PORT (8080) when the gateway app exists. It prints the URLs once
every ``/readyz`` returns 200, with the demo accounts.

Ctrl-C or SIGTERM stops every child: SIGTERM to each child's process group,
a grace period, then SIGKILL. If one child exits on its own,
the others are stopped too and the exit status is 1.

Usage: ``make up`` (or ``.venv/bin/python scripts/run_local.py``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from local_env import (
    ROOT,
    Service,
    discover_services,
    local_environment,
    write_env_file,
)
from seed_demo import print_accounts, seed_for_local_run

log = logging.getLogger("run_local")

BIN = Path(sys.executable).parent
# Working directory of every child. flask and gunicorn put it first on
# sys.path, so at the repository root the gateway/ project folder would shadow
# the installed gateway package as a namespace package.
RUN_DIR = ROOT / "var" / "run"
NGINX_RUNTIME_DIR = RUN_DIR / "nginx"
MAIL_DIR = ROOT / "var" / "mail"
DEFAULT_GATEWAY_PORT = "8080"
POLL_INTERVAL = 0.5
READY_REQUEST_TIMEOUT = 2.0


@dataclass
class Supervisor:
    """Start children in their own process groups and stop them together."""

    env: dict[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stop_signal: int | None = None

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signal = signum

    def start(self, label: str, command: list[str]) -> None:
        log.info("starting %s: %s", label, " ".join(command))
        self.children[label] = subprocess.Popen(  # noqa: S603 - our own commands
            command,
            env=self.env,
            cwd=RUN_DIR,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def exited_child(self) -> tuple[str, int] | None:
        """Return the label and exit status of a child that has exited, if any."""
        for label, process in self.children.items():
            status = process.poll()
            if status is not None:
                return label, status
        return None

    def stop_all(self, timeout: float) -> None:
        """Send SIGTERM to each running child's group; SIGKILL after ``timeout``."""
        running = self._signal_running(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = [
                label for label in running if self.children[label].poll() is None
            ]
        if running:
            log.warning("killing %s after %.0f s", ", ".join(running), timeout)
            self._signal_running(signal.SIGKILL)
        for label, process in self.children.items():
            status = process.wait()
            log.info("%s exited with status %s", label, status)

    def _signal_running(self, signum: int) -> list[str]:
        sent = []
        for label, process in self.children.items():
            if process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                continue
            sent.append(label)
        return sent


def flask_command(service: Service, *args: str) -> list[str]:
    return [str(BIN / "flask"), "--app", service.app_factory, *args]


# Run in a child process per app: prints the names of the app's CLI commands.
COMMANDS_PROBE = """
import json
from {module} import create_app
print("{marker}" + json.dumps(sorted(create_app().cli.commands)))
"""
COMMANDS_MARKER = "edulink-cli-commands:"


def cli_commands(services: list[Service], env: dict[str, str]) -> dict[str, set[str]]:
    """Return each app's Flask CLI command names, probing all apps at once."""
    probes = {}
    for service in services:
        code = COMMANDS_PROBE.format(
            module=f"{service.name}.app", marker=COMMANDS_MARKER
        )
        probes[service.name] = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-c", code],
            env=env,
            cwd=RUN_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    commands = {}
    for name, process in probes.items():
        stdout, stderr = process.communicate()
        lines = [
            line for line in stdout.splitlines() if line.startswith(COMMANDS_MARKER)
        ]
        if process.returncode != 0 or not lines:
            raise RuntimeError(
                f"creating the {name} app failed with status {process.returncode}:"
                f"\n{stderr}"
            )
        commands[name] = set(json.loads(lines[-1].removeprefix(COMMANDS_MARKER)))
    return commands


def install_job_tables(database_url: str) -> None:
    """Call ``edulink.jobs.schema.install`` when that module exists."""
    try:
        schema = importlib.import_module("edulink.jobs.schema")
    except ModuleNotFoundError as error:
        if error.name not in {"edulink.jobs", "edulink.jobs.schema"}:
            raise
        log.info("edulink.jobs.schema is not installed; no job tables to create")
        return
    schema.install(database_url)


def migrate(service: Service, env: dict[str, str]) -> None:
    log.info("migrating %s", service.name)
    subprocess.run(  # noqa: S603 - our own command
        flask_command(service, "db", "upgrade"), env=env, cwd=RUN_DIR, check=True
    )


def gunicorn_command(service: Service, workers: int) -> list[str]:
    return [
        str(BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{service.port}",
        "--workers",
        str(workers),
        "--graceful-timeout",
        "10",
        # A batch lookup of 200 ids is a request line of about 7,500 bytes,
        # above gunicorn's default limit of 4,094. 8,190 is its maximum.
        "--limit-request-line",
        "8190",
        # gunicorn 27 opens a control socket at one path per user by default.
        # Every app started here would share it, and local runs do not use it.
        "--no-control-socket",
        f"{service.app_factory}()",
    ]


def http_status(url: str) -> int | None:
    """Return the HTTP status of a GET on ``url``, or None when the connection fails."""
    try:
        with urllib.request.urlopen(  # noqa: S310 - http://127.0.0.1 URLs only
            url, timeout=READY_REQUEST_TIMEOUT
        ) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_until_ready(
    supervisor: Supervisor, checks: dict[str, str], timeout: float
) -> bool:
    """Poll each check URL until all return 200; False on timeout, exit or stop."""
    pending = dict(checks)
    last_status: dict[str, int | None] = {}
    deadline = time.monotonic() + timeout
    while pending:
        if supervisor.stop_signal is not None:
            return False
        exited = supervisor.exited_child()
        if exited is not None:
            log.error("%s exited with status %s before it was ready", *exited)
            return False
        for name, url in list(pending.items()):
            last_status[name] = http_status(url)
            if last_status[name] == 200:
                log.info("%s is ready: %s returned 200", name, url)
                del pending[name]
        if pending and time.monotonic() > deadline:
            for name, url in pending.items():
                log.error(
                    "%s not ready after %.0f s: %s returned %s",
                    name,
                    timeout,
                    url,
                    last_status.get(name) or "no response",
                )
            return False
        if pending:
            time.sleep(POLL_INTERVAL)
    return True


def print_summary(lines: list[tuple[str, str]]) -> None:
    print("\nready:", flush=True)
    for name, description in lines:
        print(f"  {name:<14} {description}")
    print(
        "\nA token for curl: make -s dev-token ROLE=student\n"
        "Settings for manual commands: set -a; . var/dev/local.env; set +a\n"
        "Stop with Ctrl-C.",
        flush=True,
    )


def supervise(supervisor: Supervisor) -> int:
    """Wait for a stop signal or a child's exit; return the exit status to use."""
    while supervisor.stop_signal is None:
        exited = supervisor.exited_child()
        if exited is not None:
            log.error("%s exited with status %s; stopping the rest", *exited)
            return 1
        time.sleep(POLL_INTERVAL)
    log.info("received %s; stopping", signal.Signals(supervisor.stop_signal).name)
    return 0


def smtp_sink_command(services: list[Service], env: dict[str, str]) -> list[str]:
    """Return the command of an SMTP server that prints each message, if needed.

    Only the notifications service sends mail. The sink starts unless
    SMTP_HOST or SMTP_PORT was set by the caller or aiosmtpd is not installed.
    """
    if not any(service.name == "notifications" for service in services):
        return []
    if {"SMTP_HOST", "SMTP_PORT"} & os.environ.keys():
        return []
    if importlib.util.find_spec("aiosmtpd") is None:
        log.warning("aiosmtpd is not installed; no SMTP sink, mail will fail")
        return []
    if importlib.util.find_spec("notifications.mail_sink") is not None:
        # Keeps each message as an .eml file under var/mail/.
        return [
            sys.executable,
            "-m",
            "notifications.mail_sink",
            f"--host={env['SMTP_HOST']}",
            f"--port={env['SMTP_PORT']}",
            f"--dir={MAIL_DIR}",
        ]
    listen = f"{env['SMTP_HOST']}:{env['SMTP_PORT']}"
    return [sys.executable, "-m", "aiosmtpd", "--nosetuid", "--listen", listen]


def pusher_server_command(services: list[Service], env: dict[str, str]) -> list[str]:
    """Return the command of the development Pusher server, and point the apps at it.

    It runs when the notifications service exists, unless REALTIME_BACKEND was
    set by the caller. Browsers and tests connect to the WebSocket port
    (PUSHER_WS_PORT, 6001); the service calls the HTTP API on PUSHER_PORT (6002).
    The app secret is generated once under var/dev/.
    """
    if not any(service.name == "notifications" for service in services):
        return []
    if "REALTIME_BACKEND" in os.environ:
        return []
    if importlib.util.find_spec("notifications.pusher_server") is None:
        return []
    secret_file = ROOT / "var" / "dev" / "pusher_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    env.update(
        REALTIME_BACKEND="pusher",
        PUSHER_APP_ID=env.get("PUSHER_APP_ID", "100001"),
        PUSHER_KEY=env.get("PUSHER_KEY", "edulink-dev"),
        PUSHER_SECRET=secret_file.read_text().strip(),
        PUSHER_HOST="127.0.0.1",
        PUSHER_PORT=env.get("PUSHER_PORT", "6002"),
        PUSHER_SSL="false",
    )
    return [
        sys.executable,
        "-m",
        "notifications.pusher_server",
        f"--ws-port={env.get('PUSHER_WS_PORT', '6001')}",
        f"--http-port={env['PUSHER_PORT']}",
    ]


def prepare(services: list[Service], env: dict[str, str]) -> dict[str, bool]:
    """Create and migrate the database; return which apps have a worker."""
    from edulink.testing.databases import ensure_database

    RUN_DIR.mkdir(parents=True, exist_ok=True)
    if ensure_database(env["DATABASE_URL"]):
        log.info("created the database of DATABASE_URL")
    install_job_tables(env["DATABASE_URL"])
    commands = cli_commands(services, env)
    for service in services:
        if "db" in commands[service.name]:
            migrate(service, env)
        else:
            log.info("%s has no db command; nothing to migrate", service.name)
    return {service.name: "worker" in commands[service.name] for service in services}


def nginx_command(services: list[Service], env: dict[str, str]) -> list[str]:
    """Return the command that runs the gateway's nginx, if it can run here."""
    if not any(service.name == "gateway" for service in services):
        return []
    binary = env.get("NGINX_BINARY", "nginx")
    if shutil.which(binary) is None:
        log.warning("%s not found; starting the apps without the nginx gateway", binary)
        return []
    runtime_dir = str(NGINX_RUNTIME_DIR)
    return [sys.executable, "-m", "gateway.nginx", "run", "--runtime-dir", runtime_dir]


def start_all(
    supervisor: Supervisor,
    services: list[Service],
    workers: dict[str, bool],
    processes_per_app: int,
) -> list[tuple[str, str]]:
    """Start every child; return the summary lines to print once they are ready."""
    env = supervisor.env
    lines = []
    pusher = pusher_server_command(services, env)
    if pusher:
        # Before the apps, so they read the Pusher settings it adds to env.
        supervisor.start("pusher-server", pusher)
        ws_url = f"ws://127.0.0.1:{env.get('PUSHER_WS_PORT', '6001')}/app/"
        lines.append(("Pusher server", f"{ws_url}{env['PUSHER_KEY']} (WebSocket)"))
    for service in services:
        supervisor.start(service.name, gunicorn_command(service, processes_per_app))
        worker = ""
        if workers[service.name]:
            supervisor.start(f"{service.name}-worker", flask_command(service, "worker"))
            worker = "  (+ worker)"
        lines.append((service.name, service.url + worker))

    sink = smtp_sink_command(services, env)
    if sink:
        supervisor.start("smtp-sink", sink)
        address = f"{env['SMTP_HOST']}:{env['SMTP_PORT']}"
        lines.append(("SMTP sink", f"{address} (keeps each message in var/mail/)"))

    nginx = nginx_command(services, env)
    if nginx:
        supervisor.start("nginx", nginx)
        url = f"http://127.0.0.1:{env.get('GATEWAY_PORT', DEFAULT_GATEWAY_PORT)}"
        lines.append(("nginx", f"{url} (public entry point, routes /api/v1/...)"))
        lines.append(("API docs", f"{url}/api/docs"))
    return lines


def readiness_checks(
    services: list[Service], env: dict[str, str], nginx: bool
) -> dict[str, str]:
    """Map each app, and nginx if it runs, to the URL that must return 200."""
    checks = {service.name: f"{service.url}/readyz" for service in services}
    if nginx:
        port = env.get("GATEWAY_PORT", DEFAULT_GATEWAY_PORT)
        checks["nginx"] = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    return checks


def use_state_dir(state_dir: Path) -> None:
    """Keep the run files and mail of this stack under ``state_dir``."""
    global RUN_DIR, NGINX_RUNTIME_DIR, MAIL_DIR
    RUN_DIR = state_dir / "run"
    NGINX_RUNTIME_DIR = RUN_DIR / "nginx"
    MAIL_DIR = state_dir / "mail"
    RUN_DIR.mkdir(parents=True, exist_ok=True)


def shift_ports(
    services: list[Service], env: dict[str, str], offset: int
) -> list[Service]:
    """Move every port of a second stack up by ``offset``; return the services.

    Apps, nginx, the SMTP sink and the Pusher server all move, and the URLs
    the apps call each other and the public base URL follow.
    """
    shifted = [Service(name=s.name, port=s.port + offset) for s in services]
    gateway_port = int(env.get("GATEWAY_PORT", DEFAULT_GATEWAY_PORT)) + offset
    public = f"http://127.0.0.1:{gateway_port}"
    env.update(
        GATEWAY_PORT=str(gateway_port),
        SMTP_PORT=str(int(env["SMTP_PORT"]) + offset),
        PUSHER_PORT=str(int(env.get("PUSHER_PORT", "6002")) + offset),
        PUSHER_WS_PORT=str(int(env.get("PUSHER_WS_PORT", "6001")) + offset),
        PUBLIC_BASE_URL=public,
        APP_URL=public,
    )
    for service in shifted:
        env[f"{service.name.upper()}_URL"] = service.url
        env[f"GATEWAY_{service.name.upper()}_UPSTREAM"] = f"127.0.0.1:{service.port}"
        if service.name == "gateway":
            env["GATEWAY_APP_UPSTREAM"] = f"127.0.0.1:{service.port}"
            if "JWKS_URL" in env:
                env["JWKS_URL"] = f"{service.url}/.well-known/jwks.json"
    return shifted


def run(args: argparse.Namespace) -> int:
    services = discover_services()
    if not services:
        log.error(
            "no apps found (services/<name>/<name>/app.py, gateway/gateway/app.py)"
        )
        return 1
    env = local_environment()
    if args.state_dir is not None:
        use_state_dir(args.state_dir.resolve())
    if args.port_offset:
        services = shift_ports(services, env, args.port_offset)
    # A second stack keeps its settings beside its state, not in var/dev/.
    write_env_file(env, *([RUN_DIR / "local.env"] if args.state_dir else []))
    workers = prepare(services, env)
    demo_accounts = seed_for_local_run(env)

    supervisor = Supervisor(env)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, supervisor.request_stop)
    try:
        lines = start_all(supervisor, services, workers, args.workers)
        checks = readiness_checks(services, env, "nginx" in supervisor.children)
        if wait_until_ready(supervisor, checks, args.ready_timeout):
            print_summary(lines)
            print_accounts(demo_accounts)
            status = supervise(supervisor)
        else:
            status = 0 if supervisor.stop_signal is not None else 1
    finally:
        supervisor.stop_all(args.stop_timeout)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("GUNICORN_WORKERS", "2")),
        help="gunicorn worker processes per app (default: $GUNICORN_WORKERS or 2)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=90.0,
        help="seconds to wait for every /readyz to return 200 (default: 90)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=15.0,
        help="seconds between SIGTERM and SIGKILL when stopping (default: 15)",
    )
    parser.add_argument(
        "--port-offset",
        type=int,
        default=int(os.environ.get("EDULINK_PORT_OFFSET", "0")),
        help="add this to every port, to run a second stack beside `make up` "
        "(default: $EDULINK_PORT_OFFSET or 0)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=os.environ.get("EDULINK_STATE_DIR") or None,
        help="folder for run files, mail and local.env instead of var/ "
        "(default: $EDULINK_STATE_DIR)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="run_local: %(message)s")
    try:
        return run(args)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        log.info("interrupted before the apps started")
        return 130


if __name__ == "__main__":
    sys.exit(main())

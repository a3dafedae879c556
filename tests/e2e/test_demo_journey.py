"""The demo journey of ``make demo`` against a whole stack started as ``make up`` does.

The stack runs ``scripts/run_local.py`` on its own throwaway database, with
every port moved up by ``E2E_PORT_OFFSET`` so a developer's ``make up`` on
the default ports keeps running, and with its run files and mail in a
temporary folder. It is stopped and its database dropped even when a step
fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edulink.testing.databases import create_database, drop_database
from tests.conftest import SERVER_URL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
E2E_PORT_OFFSET = int(os.environ.get("EDULINK_E2E_PORT_OFFSET", "20000"))
# Ports of `make up` that the offset moves: apps, nginx, SMTP sink, Pusher.
BASE_PORTS = [8000, 8001, 8002, 8003, 8004, 8080, 1025, 6001, 6002]
READY_TIMEOUT = 90.0
DEMO_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
# Set by the caller's shell, these would stop run_local from starting the
# SMTP sink or the Pusher server, or move the stack elsewhere.
UNSET = ["SMTP_HOST", "SMTP_PORT", "REALTIME_BACKEND", "GATEWAY_PORT", "JWKS_URL"]


@dataclass(frozen=True)
class Stack:
    process: subprocess.Popen[bytes]
    log: Path
    state_dir: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for_ready(stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while "\nready:" not in stack.log.read_text(errors="replace"):
        if stack.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the stack did not get ready:\n{stack.log_tail()}")
        time.sleep(0.5)


def stop(stack: Stack) -> None:
    """Send SIGTERM to run_local, which stops its children, and SIGKILL if it hangs.

    NOTE: run_local starts each child in its own session, so after a SIGKILL
    of a hung run_local its children may outlive the test.
    """
    if stack.process.poll() is None:
        os.killpg(stack.process.pid, signal.SIGTERM)
    try:
        stack.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
        stack.process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    busy = [p + E2E_PORT_OFFSET for p in BASE_PORTS if port_in_use(p + E2E_PORT_OFFSET)]
    if busy:
        pytest.fail(f"ports in use, set EDULINK_E2E_PORT_OFFSET: {busy}")
    state_dir = tmp_path_factory.mktemp("stack")
    database_url = create_database(SERVER_URL)
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    # The journey makes the data it needs; seeding would only add start time.
    env.update(DATABASE_URL=database_url, SEED_DEMO="0", GUNICORN_WORKERS="1")
    log = state_dir / "run_local.log"
    try:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "scripts" / "run_local.py"),
                    f"--port-offset={E2E_PORT_OFFSET}",
                    f"--state-dir={state_dir}",
                    "--stop-timeout=10",
                ],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        running = Stack(process=process, log=log, state_dir=state_dir)
        try:
            wait_for_ready(running)
            yield running
        finally:
            stop(running)
    finally:
        drop_database(database_url)


def test_demo_journey_passes_through_gateway(stack: Stack) -> None:
    env = dict(os.environ)
    env.update(
        EDULINK_URL=f"http://127.0.0.1:{8080 + E2E_PORT_OFFSET}",
        EDULINK_WS_URL=f"ws://127.0.0.1:{6001 + E2E_PORT_OFFSET}",
        EDULINK_MAIL_DIR=str(stack.state_dir / "mail"),
        EDULINK_ENV_FILE=str(stack.state_dir / "run" / "local.env"),
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"demo exited with {result.returncode}\n{result.stdout}\n{result.stderr}"
        f"\n--- stack log ---\n{stack.log_tail()}"
    )


def test_stack_stops_leaving_no_ports(stack: Stack) -> None:
    stop(stack)
    busy = [p + E2E_PORT_OFFSET for p in BASE_PORTS if port_in_use(p + E2E_PORT_OFFSET)]
    assert busy == []

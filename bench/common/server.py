"""Start a WSGI app under gunicorn on a free loopback port and stop it afterwards."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class GunicornConfig:
    """Worker settings shared by every app of one benchmark, so they compete fairly.

    The defaults match ``scripts/run_local.py``: two sync workers.
    """

    workers: int = 2
    worker_class: str = "sync"
    threads: int = 1

    def arguments(self) -> list[str]:
        return [
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--graceful-timeout",
            "10",
        ]

    def describe(self) -> str:
        threads = f", {self.threads} threads each" if self.threads > 1 else ""
        return f"{self.workers} {self.worker_class} workers{threads}"


def free_port() -> int:
    """Return a TCP port on the loopback interface that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def http_get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """Send one GET request and return its status and body, error statuses included."""
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _log_tail(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[-LOG_TAIL_CHARS:]


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    url: str,
    headers: Mapping[str, str],
    log_path: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with code {process.returncode} before {url} "
                f"responded. Its log ends with:\n{_log_tail(log_path)}"
            )
        try:
            status, _body = http_get(url, headers, timeout=2.0)
        except OSError:
            status = None
        if status == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"{url} did not return 200 within {timeout:.0f} s (last status {status}). "
        f"The gunicorn log ends with:\n{_log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is not None:
        log.warning("%s gunicorn had already exited with %d", name, process.returncode)
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        log.warning("%s gunicorn ignored SIGTERM for 15 s; killing it", name)
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Server:
    """A running gunicorn master process and the URL it serves."""

    url: str
    pid: int

    def worker_cpu_seconds(self) -> float:
        """Return the user plus system CPU time used so far by the master's workers.

        Workers that already exited are not counted.
        """
        return sum(
            cpu for parent, cpu in _process_cpu_seconds().values() if parent == self.pid
        )


def _process_cpu_seconds() -> dict[int, tuple[int, float]]:
    """Return ``{pid: (parent pid, CPU seconds)}`` of every process in ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # The process exited while we listed /proc.
        # The command name may contain spaces, so fields count from its ")".
        fields = stat.rsplit(")", 1)[1].split()
        parent, user, system = int(fields[1]), int(fields[11]), int(fields[12])
        processes[int(entry.name)] = (parent, (user + system) / ticks)
    return processes


@contextmanager
def gunicorn_process(
    app_spec: str,
    *,
    name: str,
    config: GunicornConfig,
    env: Mapping[str, str],
    log_dir: Path,
    ready_path: str,
    ready_headers: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[Server]:
    """Run ``gunicorn app_spec`` and yield it once ``ready_path`` returns 200.

    The server's output goes to ``log_dir/<name>.log``. Leaving the block
    stops the server with SIGTERM.
    """
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        "--bind",
        f"{HOST}:{port}",
        # gunicorn 27 opens a control socket at one path per user by default,
        # which every server started here would share. No benchmark uses it.
        "--no-control-socket",
        *config.arguments(),
        app_spec,
    ]
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    log.info("started %s (pid %d) at %s", name, process.pid, base_url)
    try:
        _wait_until_ready(
            process, base_url + ready_path, ready_headers or {}, log_path, ready_timeout
        )
        yield Server(url=base_url, pid=process.pid)
    finally:
        _stop(process, name)
        log.info("stopped %s", name)


@contextmanager
def gunicorn_server(
    app_spec: str,
    *,
    name: str,
    config: GunicornConfig,
    env: Mapping[str, str],
    log_dir: Path,
    ready_path: str,
    ready_headers: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> Iterator[str]:
    """Run ``gunicorn app_spec`` like :func:`gunicorn_process`, yielding its URL."""
    with gunicorn_process(
        app_spec,
        name=name,
        config=config,
        env=env,
        log_dir=log_dir,
        ready_path=ready_path,
        ready_headers=ready_headers,
        ready_timeout=ready_timeout,
    ) as server:
        yield server.url

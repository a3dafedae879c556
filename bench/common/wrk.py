"""Run wrk with the path-rotating Lua script and parse the figures it prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROTATE_SCRIPT = Path(__file__).with_name("rotate.lua")
RESULT_PREFIX = "BENCH_RESULT "


class WrkError(RuntimeError):
    """wrk is missing, failed, or measured responses that were not 2xx or 3xx."""


@dataclass(frozen=True)
class WrkResult:
    """Figures of one wrk run. Latencies are in milliseconds."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    status_errors: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_s


def parse_result(output: str) -> WrkResult:
    """Read the ``BENCH_RESULT`` line that ``rotate.lua`` prints when wrk finishes."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            figures = json.loads(line[len(RESULT_PREFIX) :])
            break
    else:
        raise WrkError(f"wrk printed no {RESULT_PREFIX.strip()} line:\n{output}")

    socket_errors = sum(
        figures[key]
        for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return WrkResult(
        requests=figures["requests"],
        duration_s=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
        socket_errors=socket_errors,
        status_errors=figures["status_errors"],
    )


def wrk_version() -> str:
    """Return wrk's version line, such as ``wrk debian/4.1.0-3+b2 [epoll]``."""
    completed = subprocess.run(
        [_wrk_path(), "--version"], capture_output=True, text=True, check=False
    )
    return completed.stdout.splitlines()[0].split(" Copyright")[0]


def _wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed. Install it with: apt-get install -y wrk")
    return path


def run_wrk(
    base_url: str,
    paths_file: Path,
    *,
    duration_s: int,
    connections: int,
    threads: int,
    headers: Mapping[str, str] | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """Load ``base_url`` with GETs of the paths in ``paths_file`` for ``duration_s``.

    Raises :class:`WrkError` when any response was not 2xx or 3xx, because
    then the figures would measure error handling.
    """
    command = [
        _wrk_path(),
        "--threads",
        str(threads),
        "--connections",
        str(connections),
        "--duration",
        f"{duration_s}s",
        "--timeout",
        f"{timeout_s}s",
        "--script",
        str(ROTATE_SCRIPT),
    ]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    command += [base_url, "--", str(paths_file)]

    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited with {completed.returncode}: {completed.stderr.strip()}"
        )

    result = parse_result(completed.stdout)
    if result.status_errors:
        raise WrkError(
            f"{result.status_errors} of {result.requests} responses from {base_url} "
            "were not 2xx or 3xx. Check the server log."
        )
    return result

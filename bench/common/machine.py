"""Facts about the machine a benchmark ran on, for the results table."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    """Return the CPU model name that ``lscpu`` reports, or "unknown"."""
    try:
        output = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    for line in output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            return value.strip()
    return "unknown"


def memory_gib() -> float:
    """Return the total memory from ``/proc/meminfo`` in GiB, or 0.0 if unreadable."""
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("MemTotal:"):
            kibibytes = int(line.split()[1])
            return kibibytes / 1024 / 1024
    return 0.0


def usable_cpus() -> int:
    """Return the number of CPUs this process may run on (what ``nproc`` prints)."""
    return len(os.sched_getaffinity(0))


def describe_machine() -> dict[str, str]:
    return {
        "CPUs (nproc)": str(usable_cpus()),
        "CPU model": cpu_model(),
        "memory": f"{memory_gib():.1f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
    }

"""CPU time of groups of processes, read from /proc (Linux only).

Wall-clock throughput on a machine that other work shares depends on that
work. CPU seconds per document do much less, so the benchmark reports both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds (user plus system) of each group, at one moment."""

    worker: float
    render: float
    this_process: float
    postgres: float

    def __add__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            worker=self.worker + other.worker,
            render=self.render + other.render,
            this_process=self.this_process + other.this_process,
            postgres=self.postgres + other.postgres,
        )

    def __sub__(self, other: CpuSample) -> CpuSample:
        return CpuSample(
            worker=self.worker - other.worker,
            render=self.render - other.render,
            this_process=self.this_process - other.this_process,
            postgres=self.postgres - other.postgres,
        )

    @property
    def total(self) -> float:
        return self.worker + self.render + self.this_process + self.postgres


def _stat(pid: int) -> tuple[int, float] | None:
    """Return the parent pid and CPU seconds of ``pid``, or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in brackets and may contain spaces.
    fields = text[text.rindex(")") + 2 :].split()
    parent = int(fields[1])
    seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return parent, seconds


def _processes() -> dict[int, tuple[int, float]]:
    found = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                found[int(entry.name)] = stat
    return found


def _descendants(root: int, processes: dict[int, tuple[int, float]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _seconds) in processes.items():
        children.setdefault(parent, []).append(pid)
    found, pending = set(), [root]
    while pending:
        pid = pending.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _postgres_backends(database: str) -> set[int]:
    """Return the pids of PostgreSQL backends connected to ``database``."""
    pids = set()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres: ") and f" {database} " in command:
            pids.add(int(entry.name))
    return pids


def sample(worker_pid: int, database: str) -> CpuSample:
    """Measure the worker, its render processes, this process and the backends.

    Render processes are the worker's descendants; processes that exited
    since the last sample are not counted.
    """
    processes = _processes()
    descendants = _descendants(worker_pid, processes)
    this = processes.get(os.getpid(), (0, 0.0))[1]
    return CpuSample(
        worker=processes.get(worker_pid, (0, 0.0))[1],
        render=sum(processes[pid][1] for pid in descendants),
        this_process=this,
        postgres=sum(
            processes[pid][1]
            for pid in _postgres_backends(database)
            if pid in processes
        ),
    )

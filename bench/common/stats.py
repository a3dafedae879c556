"""Medians of repeated wrk runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common.wrk import WrkResult


@dataclass(frozen=True)
class Measurement:
    """One wrk run and the CPU time the server's workers spent during it."""

    wrk: WrkResult
    worker_cpu_seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.wrk.requests_per_second

    @property
    def worker_cpu_ms_per_request(self) -> float:
        if not self.wrk.requests:
            return 0.0
        return self.worker_cpu_seconds * 1e3 / self.wrk.requests


@dataclass(frozen=True)
class Summary:
    """Medians over the runs of one measurement, with the spread of req/s."""

    runs: int
    requests_per_second: float
    min_requests_per_second: float
    max_requests_per_second: float
    p50_ms: float
    p99_ms: float
    worker_cpu_ms_per_request: float
    socket_errors: int


def summarise(measurements: Sequence[Measurement]) -> Summary:
    """Take the median of each figure separately over ``measurements``."""
    if not measurements:
        raise ValueError("summarise needs at least one measurement")

    rates = [measurement.requests_per_second for measurement in measurements]
    return Summary(
        runs=len(measurements),
        requests_per_second=statistics.median(rates),
        min_requests_per_second=min(rates),
        max_requests_per_second=max(rates),
        p50_ms=statistics.median(m.wrk.p50_ms for m in measurements),
        p99_ms=statistics.median(m.wrk.p99_ms for m in measurements),
        worker_cpu_ms_per_request=statistics.median(
            m.worker_cpu_ms_per_request for m in measurements
        ),
        socket_errors=sum(m.wrk.socket_errors for m in measurements),
    )


def ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator``, or 0.0 when the denominator is zero."""
    return numerator / denominator if denominator else 0.0

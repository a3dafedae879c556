"""Markdown tables for a comparison of an app against its bare baseline."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.common.stats import Measurement, Summary, ratio, summarise


@dataclass(frozen=True)
class Comparison:
    """One endpoint measured on the app and on the baseline, run by run.

    Run ``i`` of the app and run ``i`` of the baseline ran back to back.
    """

    endpoint: str
    app_runs: Sequence[Measurement]
    baseline_runs: Sequence[Measurement]

    @property
    def app(self) -> Summary:
        return summarise(self.app_runs)

    @property
    def baseline(self) -> Summary:
        return summarise(self.baseline_runs)

    @property
    def throughput_ratio(self) -> float:
        """Median req/s of the app divided by median req/s of the baseline."""
        return ratio(self.app.requests_per_second, self.baseline.requests_per_second)

    @property
    def paired_throughput_ratio(self) -> float:
        """Median over runs of app req/s divided by the adjacent baseline run's."""
        return statistics.median(
            ratio(app.requests_per_second, baseline.requests_per_second)
            for app, baseline in zip(self.app_runs, self.baseline_runs, strict=True)
        )

    @property
    def cpu_ratio(self) -> float:
        """Baseline worker CPU per request divided by the app's (higher is better)."""
        return ratio(
            self.baseline.worker_cpu_ms_per_request,
            self.app.worker_cpu_ms_per_request,
        )


def _row(endpoint: str, target: str, summary: Summary) -> str:
    spread = (
        f"{summary.min_requests_per_second:.0f}-{summary.max_requests_per_second:.0f}"
    )
    return (
        f"| {endpoint} | {target} | {summary.requests_per_second:.0f} | {spread} "
        f"| {summary.p50_ms:.1f} | {summary.p99_ms:.1f} "
        f"| {summary.worker_cpu_ms_per_request:.2f} | {summary.socket_errors} |"
    )


def results_table(
    comparisons: Sequence[Comparison], *, app_name: str, target_ratio: float
) -> str:
    """Return a table of medians per endpoint and app, then the ratios."""
    lines = [
        "| endpoint | app | req/s (median) | req/s (min-max) | p50 ms | p99 ms "
        "| worker CPU ms/request | socket errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for comparison in comparisons:
        lines.append(_row(comparison.endpoint, app_name, comparison.app))
        lines.append(_row(comparison.endpoint, "bare Flask", comparison.baseline))

    lines += [
        "",
        f"| endpoint | req/s ratio {app_name} / bare (medians) "
        "| median of per-run ratios | worker CPU ratio bare / "
        f"{app_name} | target | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for comparison in comparisons:
        met = "yes" if comparison.throughput_ratio >= target_ratio else "no"
        lines.append(
            f"| {comparison.endpoint} | {comparison.throughput_ratio:.2f} "
            f"| {comparison.paired_throughput_ratio:.2f} "
            f"| {comparison.cpu_ratio:.2f} | {target_ratio:.2f} | {met} |"
        )
    return "\n".join(lines)


def facts_list(facts: Mapping[str, str]) -> str:
    """Return ``facts`` as a Markdown bullet list."""
    return "\n".join(f"- {name}: {value}" for name, value in facts.items())

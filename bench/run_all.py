"""Run every benchmark under bench/ and record their reports in BENCHMARKS.md.

Usage, from the repository root (``make bench`` runs it with no options)::

    .venv/bin/python -m bench.run_all                 # all, with repeated runs
    .venv/bin/python -m bench.run_all --only gateway --quick

Each benchmark runs in its own process with the options below, which give
the repeated runs whose medians and ratios against the bare baseline its
report prints. Its report (stdout) is kept in ``var/bench/<name>.md`` and its
log (stderr) in ``var/bench/<name>.log``. The driver then replaces the
section between the two ``make bench`` markers at the end of BENCHMARKS.md
with the machine, the load, each command and each report. The hand-written
sections above the markers are left alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "var" / "bench"
BENCHMARKS_FILE = ROOT / "BENCHMARKS.md"
BEGIN_MARKER = "<!-- make bench: begin -->"
END_MARKER = "<!-- make bench: end -->"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its command, full options and the options of a quick run."""

    name: str
    title: str
    command: tuple[str, ...]
    options: tuple[str, ...]
    quick_options: tuple[str, ...]


BENCHMARKS = (
    Benchmark(
        "students",
        "Students service against a bare Flask app",
        ("-m", "bench.students.run"),
        ("--runs", "5", "--duration", "10", "--warmup", "5"),
        ("--runs", "1", "--duration", "2", "--warmup", "1", "--students", "2000"),
    ),
    Benchmark(
        "internships",
        "Internships service at two data sizes",
        ("-m", "bench.internships.run"),
        ("--rounds", "3", "--duration", "10"),
        ("--rounds", "1", "--duration", "2", "--sizes", "10k"),
    ),
    Benchmark(
        "gateway",
        "Gateway against the students service directly",
        # The gateway benchmark is a script that puts gateway/ on sys.path.
        ("bench/gateway/run.py",),
        ("--rounds", "5", "--duration", "10", "--limit", "300"),
        ("--rounds", "1", "--duration", "2", "--limit", "50"),
    ),
    Benchmark(
        "jobs",
        "Background jobs against bare pgqueuer",
        ("-m", "bench.jobs.run"),
        ("--runs", "5", "--jobs", "2000", "--concurrency", "8"),
        ("--runs", "1", "--jobs", "200", "--latency-samples", "20"),
    ),
    Benchmark(
        "notifications",
        "Notifications: real-time delivery and alerts",
        ("-m", "bench.notifications.run"),
        ("--samples", "200", "--repeats", "3", "--users", "10000"),
        ("--samples", "20", "--repeats", "1", "--users", "1000"),
    ),
    Benchmark(
        "documents",
        "Documents against bare WeasyPrint",
        ("-m", "bench.documents.run"),
        ("--runs", "5", "--documents", "30", "--latency-samples", "6"),
        ("--runs", "1", "--documents", "10", "--latency-samples", "2"),
    ),
)


@dataclass(frozen=True)
class Outcome:
    """The arguments, exit status, duration and report of one benchmark process."""

    benchmark: Benchmark
    arguments: tuple[str, ...]
    status: int
    seconds: float
    report: str


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def run_benchmark(benchmark: Benchmark, *, quick: bool) -> Outcome:
    """Run one benchmark, keeping its report and its log (stderr) under var/bench/."""
    options = benchmark.quick_options if quick else benchmark.options
    arguments = (*benchmark.command, *options)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{benchmark.name}.log"
    print(
        f"bench: running {benchmark.name} (log: {log_path.relative_to(ROOT)}): "
        f"python {' '.join(arguments)}",
        flush=True,
    )
    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        process = subprocess.run(
            [sys.executable, *arguments],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log_file,
            check=False,
        )
    seconds = time.monotonic() - started
    output = process.stdout.decode(errors="replace")
    # The apps a benchmark starts in-process log JSON lines to stdout too;
    # those belong in the log, not in the report.
    report = "\n".join(
        line for line in output.splitlines() if not line.startswith('{"level"')
    ).strip()
    (LOG_DIR / f"{benchmark.name}.md").write_text(report + "\n")
    print(
        f"bench: {benchmark.name} exited with status {process.returncode} "
        f"after {seconds:.0f} s",
        flush=True,
    )
    return Outcome(benchmark, arguments, process.returncode, seconds, report)


def demote_headings(report: str) -> str:
    """Move a report's Markdown headings two levels down, below the section's."""
    lines = []
    for line in report.splitlines():
        lines.append("##" + line if line.startswith("#") else line)
    return "\n".join(lines)


def outcome_section(outcome: Outcome) -> str:
    benchmark = outcome.benchmark
    command = f".venv/bin/python {' '.join(outcome.arguments)}"
    lines = [
        f"### {benchmark.title}",
        "",
        f"Command: `{command}` ({outcome.seconds:.0f} s).",
        "",
    ]
    if outcome.status != 0:
        lines.append(
            f"Failed with exit status {outcome.status}; the log is in "
            f"`var/bench/{benchmark.name}.log`."
        )
    if outcome.report:
        lines.append(demote_headings(outcome.report))
    return "\n".join(lines)


def results_section(
    outcomes: Sequence[Outcome], *, started: datetime, load_before: str, quick: bool
) -> str:
    machine = ", ".join(f"{name} {value}" for name, value in describe_machine().items())
    kind = "quick runs (`--quick`: one short run each, not for comparison)"
    lines = [
        BEGIN_MARKER,
        "## Latest `make bench` run",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench.run_all`); the",
        "sections above were measured and written by hand earlier.",
        "",
        f"Run on {started:%Y-%m-%d} from {started:%H:%M} UTC"
        + (f", {kind}." if quick else "."),
        f"Machine: {machine}. Load average before: {load_before}; "
        f"after: {load_average()}.",
    ]
    for outcome in outcomes:
        lines += ["", outcome_section(outcome)]
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """Replace the text between the markers, or append ``section`` at the end."""
    begin = document.find(BEGIN_MARKER)
    end = document.find(END_MARKER)
    if begin == -1 or end == -1:
        return document.rstrip("\n") + "\n\n" + section
    return document[:begin] + section + document[end + len(END_MARKER) + 1 :]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [benchmark.name for benchmark in BENCHMARKS]
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_all", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=names,
        default=names,
        help="run only these benchmarks (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one short run each, to check that every benchmark works",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCHMARKS_FILE,
        help="Markdown file whose make bench section is replaced "
        "(default: BENCHMARKS.md)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    load_before = load_average()
    outcomes = [
        run_benchmark(benchmark, quick=args.quick)
        for benchmark in BENCHMARKS
        if benchmark.name in args.only
    ]
    section = results_section(
        outcomes, started=started, load_before=load_before, quick=args.quick
    )
    document = args.output.read_text() if args.output.exists() else "# Benchmarks\n"
    args.output.write_text(replace_section(document, section))
    print(f"bench: wrote {args.output}", flush=True)
    failed = [outcome.benchmark.name for outcome in outcomes if outcome.status != 0]
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

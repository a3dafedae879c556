"""bench/run_all.py: how it rewrites its section of BENCHMARKS.md."""

from __future__ import annotations

from bench.run_all import BEGIN_MARKER, BENCHMARKS, END_MARKER, replace_section

HAND_WRITTEN = "# Benchmarks\n\n## Students service\n\nMeasured by hand.\n"


def test_replace_section_appends_once():
    section = f"{BEGIN_MARKER}\nfirst\n{END_MARKER}\n"

    document = replace_section(HAND_WRITTEN, section)

    assert document.startswith(HAND_WRITTEN)
    assert document.endswith(section)


def test_replace_section_keeps_hand_written():
    first = replace_section(HAND_WRITTEN, f"{BEGIN_MARKER}\nfirst\n{END_MARKER}\n")

    second = replace_section(first, f"{BEGIN_MARKER}\nsecond\n{END_MARKER}\n")

    assert second.startswith(HAND_WRITTEN)
    assert "first" not in second
    assert second.count(BEGIN_MARKER) == 1


def test_every_benchmark_is_listed():
    names = {benchmark.name for benchmark in BENCHMARKS}

    assert names == {
        "students",
        "internships",
        "gateway",
        "jobs",
        "notifications",
        "documents",
    }

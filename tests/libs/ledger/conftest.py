"""Ledger tests reuse the job fixtures: installed job tables, sessions, workers."""

from tests.libs.jobs.conftest import (  # noqa: F401
    jobs_database_url,
    jobs_engine,
    run_burst,
    sessions,
)

"""scripts/seed_demo.py against a freshly migrated database of its own."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import psycopg
import pytest

from edulink.migrations import upgrade
from edulink.testing.databases import create_database, drop_database
from gateway.passwords import Passwords
from tests.conftest import SERVER_URL

ROOT = Path(__file__).resolve().parents[2]
STATUSES = {
    "APPLIED",
    "SHORTLISTED",
    "ACCEPTED",
    "ACTIVE",
    "COMPLETED",
    "CERTIFIED",
    "REJECTED",
    "WITHDRAWN",
    "TERMINATED",
}


def load_seed_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "seed_demo", ROOT / "scripts" / "seed_demo.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up while building DemoAccount.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def seed_demo() -> ModuleType:
    return load_seed_demo()


@pytest.fixture(scope="module")
def seeded(seed_demo: ModuleType) -> Iterator[tuple[str, list]]:
    """A migrated database seeded once, and the demo accounts it returned."""
    import gateway.app
    import internships.app
    import students.app

    url = create_database(SERVER_URL, prefix="edulink_seed_test")
    try:
        for app, schema in (
            (students.app, "students"),
            (internships.app, "internships"),
            (gateway.app, "gateway"),
        ):
            upgrade(app.MIGRATIONS_DIR, url, schema)
        yield url, seed_demo.seed_demo(url)
    finally:
        drop_database(url)


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as connection:
        return connection.execute(query).fetchone()[0]


def test_generate_is_deterministic(seed_demo):
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    first = seed_demo.generate(now)
    second = seed_demo.generate(now)

    assert first.accounts == second.accounts
    assert first.rows["students.students"] == second.rows["students.students"]


def test_second_seed_inserts_nothing(seed_demo, seeded):
    url, accounts = seeded
    before = scalar(url, "SELECT count(*) FROM internships.applications")

    again = seed_demo.seed_demo(url)

    assert again == accounts
    assert scalar(url, "SELECT count(*) FROM internships.applications") == before
    assert scalar(url, "SELECT count(*) FROM gateway.accounts") == len(accounts)


def test_seed_covers_every_status(seeded):
    url, _ = seeded
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT DISTINCT status FROM internships.applications"
        ).fetchall()

    assert {row[0] for row in rows} == STATUSES


def test_seed_respects_capacity(seeded):
    url, _ = seeded
    over = scalar(
        url,
        "SELECT count(*) FROM internships.opportunities o WHERE o.capacity < ("
        " SELECT count(*) FROM internships.applications a"
        " WHERE a.opportunity_id = o.id"
        " AND a.status IN ('ACCEPTED', 'ACTIVE', 'COMPLETED', 'CERTIFIED'))",
    )

    assert over == 0


def test_seed_applies_only_to_listed(seeded):
    url, _ = seeded
    to_drafts = scalar(
        url,
        "SELECT count(*) FROM internships.applications a"
        " JOIN internships.opportunities o ON o.id = a.opportunity_id"
        " WHERE o.status = 'DRAFT'",
    )

    assert to_drafts == 0


def test_seed_dates_every_placement(seeded):
    url, _ = seeded
    undated = scalar(
        url,
        "SELECT count(*) FROM internships.applications"
        " WHERE status IN ('ACTIVE', 'COMPLETED', 'CERTIFIED', 'TERMINATED')"
        " AND (start_date IS NULL OR end_date IS NULL)",
    )

    assert undated == 0


def test_demo_accounts_match_seeded_rows(seeded):
    url, accounts = seeded
    by_role = {account.role: account for account in accounts}
    students = [account for account in accounts if account.role == "student"]
    with psycopg.connect(url) as connection:
        institution = connection.execute(
            "SELECT count(*) FROM students.institutions WHERE id = %s",
            (by_role["institution_admin"].org_ids[0],),
        ).fetchone()[0]
        employer = connection.execute(
            "SELECT count(*) FROM internships.employers WHERE id = %s",
            (by_role["employer_admin"].org_ids[0],),
        ).fetchone()[0]
        profiles = connection.execute(
            "SELECT count(*) FROM students.students WHERE user_id = ANY(%s)",
            ([account.user_id for account in students],),
        ).fetchone()[0]

    assert institution == 1
    assert employer == 1
    assert profiles == len(students)


def test_demo_password_matches_hash(seeded):
    url, accounts = seeded
    with psycopg.connect(url) as connection:
        stored = connection.execute(
            "SELECT password_hash FROM gateway.accounts WHERE email = %s",
            (accounts[0].email,),
        ).fetchone()[0]

    assert Passwords().check(stored, accounts[0].password)


def test_seed_dates_nothing_in_future(seeded):
    url, _ = seeded
    future = scalar(
        url,
        "SELECT count(*) FROM internships.applications"
        " WHERE created_at > now() OR status_changed_at < created_at",
    )
    future_opportunities = scalar(
        url, "SELECT count(*) FROM internships.opportunities WHERE created_at > now()"
    )

    assert future == 0
    assert future_opportunities == 0

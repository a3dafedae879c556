"""Fill a migrated students schema with institutions, students and claims via COPY.

The data is random but reproducible from a seed. About 70% of students have
an approved claim and are verified members of an institution, 20% wait on a
pending claim and 10% had their claim rejected.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

log = logging.getLogger(__name__)

FIRST_NAMES = (
    "Amina",
    "Brian",
    "Chebet",
    "Daniel",
    "Esther",
    "Faith",
    "George",
    "Halima",
    "Ian",
    "Joy",
    "Kevin",
    "Lilian",
    "Mercy",
    "Njeri",
    "Otieno",
    "Peter",
    "Qadira",
    "Rose",
    "Samuel",
    "Tabitha",
    "Umar",
    "Vivian",
    "Wanjiru",
    "Yusuf",
)
LAST_NAMES = (
    "Achieng",
    "Barasa",
    "Chege",
    "Njoroge",
    "Kamau",
    "Kiplagat",
    "Mwangi",
    "Mutua",
    "Ochieng",
    "Odhiambo",
    "Onyango",
    "Wafula",
    "Wambui",
    "Kariuki",
    "Kimani",
    "Nyambura",
    "Otieno",
    "Juma",
    "Hassan",
    "Mohamed",
)
COURSES = (
    "BSc Computer Science",
    "BSc Information Technology",
    "BCom Accounting",
    "BA Economics",
    "BSc Civil Engineering",
    "BSc Electrical Engineering",
    "BSc Nursing",
    "LLB Law",
    "BEd Mathematics",
    "BSc Agriculture",
)
SKILLS = (
    "Python",
    "SQL",
    "Excel",
    "Java",
    "JavaScript",
    "React",
    "Django",
    "Flask",
    "Accounting",
    "Marketing",
    "AutoCAD",
    "MATLAB",
    "Statistics",
    "Research",
    "Writing",
    "Teaching",
    "Networking",
    "Linux",
    "Photoshop",
    "Sales",
    "Nursing",
    "Surveying",
    "Welding",
    "Negotiation",
    "Leadership",
)
CLAIM_OUTCOMES = ("approved", "pending", "rejected")
CLAIM_WEIGHTS = (70, 20, 10)
DATA_SPAN = timedelta(days=730)


@dataclass
class SeedData:
    """Rows to COPY, and the student ids the benchmark requests."""

    institutions: list[tuple[Any, ...]] = field(default_factory=list)
    students: list[tuple[Any, ...]] = field(default_factory=list)
    claims: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def student_ids(self) -> list[uuid.UUID]:
        return [row[0] for row in self.students]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _timestamp(rng: random.Random, now: datetime) -> datetime:
    return now - timedelta(seconds=rng.uniform(0, DATA_SPAN.total_seconds()))


def _institution_rows(
    rng: random.Random, count: int, now: datetime
) -> list[tuple[Any, ...]]:
    rows = []
    for number in range(1, count + 1):
        created = now - DATA_SPAN - timedelta(days=rng.randint(1, 365))
        domains = [f"uni{number}.ac.ke", f"students.uni{number}.ac.ke"]
        status = "active" if number % 10 else "verified"
        rows.append(
            (_uuid(rng), f"University {number}", domains, status, created, created, 1)
        )
    return rows


def _student_and_claim(
    rng: random.Random, number: int, institution: tuple[Any, ...], now: datetime
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    student_id = _uuid(rng)
    created = _timestamp(rng, now)
    decided = created + timedelta(hours=rng.randint(1, 72))
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}.{number}@{institution[2][0]}".lower()
    registration = f"REG-{number:06d}/{created.year}"
    outcome = rng.choices(CLAIM_OUTCOMES, CLAIM_WEIGHTS)[0]
    approved = outcome == "approved"

    student = (
        student_id,
        _uuid(rng),
        f"{first} {last}",
        email,
        institution[0] if approved else None,
        registration,
        rng.choice(COURSES),
        rng.randint(1, 5),
        rng.sample(SKILLS, rng.randint(2, 6)),
        approved,
        rng.choice((2, 2, 2, 3, 4)) if approved else rng.choice((0, 1)),
        created,
        decided if outcome != "pending" else created,
        2 if outcome != "pending" else 1,
    )
    claim = (
        _uuid(rng),
        student_id,
        institution[0],
        outcome,
        "email_domain" if approved and rng.random() < 0.6 else "admin_review",
        registration,
        "The registration number is not on our records." if not approved else None,
        None if outcome == "pending" else decided,
        created,
        created if outcome == "pending" else decided,
        1 if outcome == "pending" else 2,
    )
    return student, claim


def generate(*, institutions: int, students: int, seed: int = 1) -> SeedData:
    """Build the rows for ``institutions`` institutions and ``students`` students."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    data = SeedData(institutions=_institution_rows(rng, institutions, now))
    for number in range(students):
        institution = data.institutions[number % institutions]
        student, claim = _student_and_claim(rng, number, institution, now)
        data.students.append(student)
        data.claims.append(claim)
    return data


COPY_STATEMENTS = {
    "institutions": "COPY students.institutions "
    "(id, name, email_domains, status, created_at, updated_at, version) FROM STDIN",
    "students": "COPY students.students "
    "(id, user_id, full_name, email, institution_id, registration_number, course, "
    "year_of_study, skills, verified, trust_level, created_at, updated_at, version) "
    "FROM STDIN",
    "claims": "COPY students.affiliation_claims "
    "(id, student_id, institution_id, status, method, registration_number, reason, "
    "decided_at, created_at, updated_at, version) FROM STDIN",
}


def load(database_url: str, data: SeedData) -> None:
    """COPY the rows into the students schema in one transaction, then ANALYZE."""
    tables = {
        "institutions": data.institutions,
        "students": data.students,
        "claims": data.claims,
    }
    with psycopg.connect(database_url) as connection:
        with connection.cursor() as cursor:
            for name, rows in tables.items():
                with cursor.copy(COPY_STATEMENTS[name]) as copy:
                    for row in rows:
                        copy.write_row(row)
                log.info("copied %d rows into %s", len(rows), name)
        connection.commit()

    # ANALYZE cannot run inside a transaction block.
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ANALYZE students.institutions")
        connection.execute("ANALYZE students.students")
        connection.execute("ANALYZE students.affiliation_claims")

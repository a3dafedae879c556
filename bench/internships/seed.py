"""Fill migrated students and internships schemas with generate_series.

Everything is generated inside PostgreSQL, so a million applications take
one INSERT ... SELECT each instead of a million round trips. Ids are
``md5(kind || n)::uuid``, so rows can refer to each other by number and the
benchmark can name them without reading them back.

Shape: 100 employers with 100 opportunities each (80% OPEN), ``students``
students, and ``applications_per_student`` applications per student to
distinct opportunities. The first application of one student in ten is
ACCEPTED; the rest are APPLIED, SHORTLISTED or REJECTED.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

EMPLOYERS = 100
OPPORTUNITIES = 10_000
TITLE_WORDS = [
    "software",
    "data",
    "marketing",
    "finance",
    "nursing",
    "civil",
    "electrical",
    "research",
    "sales",
    "design",
    "operations",
    "accounting",
    "network",
    "mobile",
    "cloud",
    "security",
    "agriculture",
    "teaching",
    "legal",
    "logistics",
]
SKILLS = [
    "python",
    "sql",
    "excel",
    "java",
    "javascript",
    "react",
    "django",
    "flask",
    "accounting",
    "marketing",
    "autocad",
    "matlab",
    "statistics",
    "research",
    "writing",
    "teaching",
    "networking",
    "linux",
    "photoshop",
    "sales",
]
TOWNS = [
    "Nairobi",
    "Mombasa",
    "Kisumu",
    "Nakuru",
    "Eldoret",
    "Thika",
    "Nyeri",
    "Machakos",
]


@dataclass(frozen=True)
class SeedSize:
    students: int
    applications_per_student: int = 10

    @property
    def applications(self) -> int:
        return self.students * self.applications_per_student


def entity_id(kind: str, number: int) -> uuid.UUID:
    """Return the id the seed gives row ``number`` of ``kind`` (same as in SQL)."""
    return uuid.UUID(hashlib.md5(f"{kind}{number}".encode()).hexdigest())  # noqa: S324


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]::text[]"


EMPLOYERS_SQL = f"""
INSERT INTO internships.employers
    (id, name, contact_email, status, created_at, updated_at, version)
SELECT md5('employer' || n)::uuid, 'Employer ' || n, 'jobs' || n || '@example.com',
       'active', now(), now(), 1
FROM generate_series(1, {EMPLOYERS}) AS n
"""

OPPORTUNITIES_SQL = f"""
WITH words AS (SELECT {_array(TITLE_WORDS)} AS titles, {_array(SKILLS)} AS skills,
                      {_array(TOWNS)} AS towns)
INSERT INTO internships.opportunities
    (id, employer_id, title, description, skills, location, location_type, capacity,
     start_date, end_date, deadline, status, created_at, updated_at, version)
SELECT md5('opportunity' || n)::uuid,
       md5('employer' || (1 + mod(n, {EMPLOYERS})))::uuid,
       initcap(titles[1 + mod(n, 20)]) || ' intern ' || n,
       'Join our ' || titles[1 + mod(n / 20, 20)] || ' team and work on '
           || titles[1 + mod(n / 400, 20)] || ' projects with mentors.',
       ARRAY[skills[1 + mod(n, 20)], skills[1 + mod(n / 20, 20)]],
       towns[1 + mod(n, 8)],
       (ARRAY['onsite', 'remote', 'hybrid'])[1 + mod(n, 3)],
       5 + mod(n, 20),
       current_date + 60 + mod(n, 30),
       current_date + 150 + mod(n, 30),
       now() + make_interval(days => 1 + mod(n, 50), mins => mod(n, 1440)),
       CASE WHEN mod(n, 5) = 0 THEN 'DRAFT' ELSE 'OPEN' END,
       now() - make_interval(mins => n), now(), 1
FROM generate_series(1, {OPPORTUNITIES}) AS n, words
"""

STUDENTS_SQL = """
INSERT INTO students.students
    (id, user_id, full_name, email, course, year_of_study, skills, verified,
     trust_level, created_at, updated_at, version)
SELECT md5('student' || n)::uuid, md5('user' || n)::uuid, 'Student ' || n,
       'student' || n || '@example.com', 'BSc Computer Science', 1 + mod(n, 4),
       ARRAY['python', 'sql'], false, 0, now(), now(), 1
FROM generate_series(1, %(students)s) AS n
"""

# Student s applies to opportunities (s * 7 + k * 1009) mod 10000 for k in
# 0..per-1, which are distinct because 1009 * k mod 10000 differs for k < 10.
APPLICATIONS_SQL = f"""
INSERT INTO internships.applications
    (id, opportunity_id, employer_id, student_id, student_user_id, institution_id,
     student_snapshot, status, created_at, updated_at, status_changed_at, version)
SELECT md5('application' || s || ':' || k)::uuid,
       md5('opportunity' || o)::uuid,
       md5('employer' || (1 + mod(o, {EMPLOYERS})))::uuid,
       md5('student' || s)::uuid,
       md5('user' || s)::uuid,
       md5('institution' || (1 + mod(s, 50)))::uuid,
       jsonb_build_object(
           'student_id', md5('student' || s)::uuid, 'full_name', 'Student ' || s,
           'email', 'student' || s || '@example.com',
           'course', 'BSc Computer Science', 'year_of_study', 1 + mod(s, 4),
           'skills', jsonb_build_array('python', 'sql'),
           'institution', jsonb_build_object(
               'id', md5('institution' || (1 + mod(s, 50)))::uuid, 'name',
               'Institution ' || (1 + mod(s, 50)))),
       CASE WHEN k = 0 AND mod(s, 10) = 0 THEN 'ACCEPTED'
            ELSE (ARRAY['APPLIED', 'SHORTLISTED', 'REJECTED'])[1 + mod(s + k, 3)] END,
       now() - make_interval(secs => s * 10 + k), now(), now(), 1
FROM generate_series(1, %(students)s) AS s,
     generate_series(0, %(per_student)s - 1) AS k,
     LATERAL (SELECT 1 + mod(s * 7 + k * 1009, {OPPORTUNITIES}) AS o) AS chosen
"""


def seed(url: str, size: SeedSize) -> dict[str, float]:
    """Insert the rows and return the seconds each table took."""
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '512MB'")
        steps = [
            ("employers", EMPLOYERS_SQL, {}),
            ("opportunities", OPPORTUNITIES_SQL, {}),
            ("students", STUDENTS_SQL, {"students": size.students}),
            (
                "applications",
                APPLICATIONS_SQL,
                {
                    "students": size.students,
                    "per_student": size.applications_per_student,
                },
            ),
        ]
        for name, statement, parameters in steps:
            started = time.perf_counter()
            connection.execute(statement, parameters)  # type: ignore[arg-type]
            timings[name] = time.perf_counter() - started
            log.info("seeded %s in %.1f s", name, timings[name])
        started = time.perf_counter()
        connection.execute("VACUUM ANALYZE internships.applications")
        connection.execute("VACUUM ANALYZE internships.opportunities")
        timings["vacuum analyze"] = time.perf_counter() - started
    return timings

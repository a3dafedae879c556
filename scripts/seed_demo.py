"""Load demo data into a migrated Edulink database, once.

Everything comes from ``random.Random(2026)``, so every run generates the same
institutions, employers, opportunities, students, applications and demo
accounts (ids included). Dates are relative to today, so OPEN opportunities
always have a future deadline. Rows go in with COPY in one transaction. The
row in ``demo.seed_runs`` records that the data is there, so a second run
inserts nothing, and ``demo.accounts`` keeps the demo accounts (with their
published password) that later runs print. Schemas of apps missing from the
checkout are skipped.

Usage: ``.venv/bin/python scripts/seed_demo.py`` (``make up`` calls it unless
``SEED_DEMO=0``).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger("seed_demo")

SEED = 2026
DEMO_PASSWORD = "edulink-demo-2026"  # noqa: S105 - a published demo password
# Serialises concurrent seeders on one database (any constant works).
ADVISORY_LOCK_KEY = 2026_12_04

STUDENTS = 3000
EMPLOYERS = 40
OPPORTUNITIES = 320

INSTITUTIONS = [
    ("Lakeside University", ["lakeside.ac.ke", "students.lakeside.ac.ke"], "LKU"),
    ("Highlands Technical University", ["htu.ac.ke"], "HTU"),
    ("Coastal Institute of Technology", ["cit.ac.ke"], "CIT"),
    ("Savannah College of Business", ["savannah.ac.ke"], "SCB"),
    ("Rift Valley Polytechnic", ["rvp.ac.ke"], "RVP"),
    ("Eastern Medical Training College", ["emtc.ac.ke"], "EMT"),
]
DEPARTMENTS = {
    "Computing": ["Computer Science", "Information Technology", "Software Engineering"],
    "Business": ["Commerce", "Accounting", "Marketing"],
    "Engineering": ["Civil Engineering", "Electrical Engineering"],
    "Health Sciences": ["Nursing", "Public Health"],
    "Agriculture": ["Agribusiness", "Food Science"],
}
SKILLS_BY_DEPARTMENT = {
    "Computing": ["python", "sql", "javascript", "react", "linux", "django", "java"],
    "Business": ["excel", "accounting", "marketing", "sales", "writing", "sql"],
    "Engineering": ["autocad", "matlab", "statistics", "research", "excel"],
    "Health Sciences": ["research", "statistics", "writing", "patient care"],
    "Agriculture": ["research", "statistics", "excel", "agronomy", "sales"],
}
EMPLOYER_WORDS = [
    ("Kijani", "Tech"),
    ("Safari", "Logistics"),
    ("Jua", "Energy"),
    ("Mawingu", "Cloud"),
    ("Baraka", "Health"),
    ("Tausi", "Finance"),
    ("Mto", "Water Works"),
    ("Nyota", "Media"),
    ("Simba", "Engineering"),
    ("Pwani", "Foods"),
]
ROLES_BY_DEPARTMENT = {
    "Computing": ["Software Developer", "Data Analyst", "Network Support", "QA"],
    "Business": ["Finance", "Marketing", "Sales", "Operations"],
    "Engineering": ["Site Engineering", "Electrical Design", "Surveying"],
    "Health Sciences": ["Clinical", "Community Health", "Laboratory"],
    "Agriculture": ["Agronomy", "Supply Chain", "Quality Control"],
}
TOWNS = ["Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret", "Thika", "Nyeri"]
FIRST_NAMES = [
    "Amina", "Brian", "Cynthia", "David", "Esther", "Faith", "George", "Halima",
    "Ian", "Joy", "Kevin", "Lucy", "Mercy", "Noah", "Olivia", "Peter", "Rose",
    "Samuel", "Tabitha", "Victor", "Wanjiru", "Yusuf", "Zawadi", "Kamau",
]  # fmt: skip
LAST_NAMES = [
    "Otieno", "Wanjiku", "Mwangi", "Achieng", "Kiprop", "Njoroge", "Mutua",
    "Omondi", "Chebet", "Kariuki", "Wafula", "Hassan", "Barasa", "Kimani",
]  # fmt: skip

# Target share of each status. The generator downgrades a pick that would
# break a lifecycle rule (capacity, one current placement per student).
STATUS_WEIGHTS = {
    "APPLIED": 34,
    "SHORTLISTED": 16,
    "REJECTED": 16,
    "WITHDRAWN": 8,
    "ACCEPTED": 6,
    "ACTIVE": 7,
    "COMPLETED": 6,
    "CERTIFIED": 4,
    "TERMINATED": 3,
}
PLACE_TAKING = {"ACCEPTED", "ACTIVE", "COMPLETED", "CERTIFIED"}
CURRENT_PLACEMENT = {"ACCEPTED", "ACTIVE"}
WITH_DATES = PLACE_TAKING | {"TERMINATED"}


@dataclass(frozen=True)
class DemoAccount:
    """A gateway account for signing in to the demo, with its known password."""

    email: str
    name: str
    role: str
    user_id: uuid.UUID
    org_ids: tuple[uuid.UUID, ...] = ()
    password: str = DEMO_PASSWORD


@dataclass
class Dataset:
    """Rows per table, as tuples in the column order of ``COLUMNS``."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    accounts: list[DemoAccount] = field(default_factory=list)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)


COLUMNS = {
    "students.institutions": "id, name, email_domains, status",
    "students.departments": "id, institution_id, name",
    "students.cohorts": "id, institution_id, department_id, name, start_year, end_year",
    "students.students": "id, user_id, full_name, email, institution_id, "
    "registration_number, course, year_of_study, skills, verified, trust_level, "
    "created_at",
    "students.affiliation_claims": "id, student_id, institution_id, status, method, "
    "registration_number, decided_at, created_at",
    "internships.employers": "id, name, contact_email, contact_phone, website, status",
    "internships.opportunities": "id, employer_id, title, description, skills, "
    "location, location_type, capacity, stipend_amount, stipend_currency, "
    "start_date, end_date, deadline, institution_id, status, created_at",
    "internships.applications": "id, opportunity_id, employer_id, student_id, "
    "student_user_id, institution_id, student_snapshot, cover_letter, status, "
    "start_date, end_date, supervisor_user_id, reason, status_changed_at, "
    "created_at",
    "gateway.accounts": "id, email, password_hash, name, role, org_ids, "
    "email_verified, status",
}


class Generator:
    """Build the whole demo dataset from one seeded random number generator."""

    def __init__(self, now: datetime) -> None:
        self.rng = random.Random(SEED)  # noqa: S311 - demo data, not secrets
        self.now = now
        self.data = Dataset()
        self.institutions: list[dict[str, Any]] = []
        self.employers: list[dict[str, Any]] = []
        self.opportunities: list[dict[str, Any]] = []
        self.students: list[dict[str, Any]] = []
        # Assigned to the demo employer's placements and to the supervisor.
        self.supervisor_id = self.uuid()

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def past(self, days: int) -> datetime:
        return self.now - timedelta(seconds=self.rng.randrange(days * 86400))

    def build(self) -> Dataset:
        self.build_institutions()
        self.build_employers()
        self.build_opportunities()
        self.build_students()
        self.build_applications()
        self.build_accounts()
        return self.data

    def build_institutions(self) -> None:
        for name, domains, code in INSTITUTIONS:
            institution = {"id": self.uuid(), "name": name, "domains": domains}
            institution.update(code=code, departments=[])
            self.data.add(
                "students.institutions", (institution["id"], name, domains, "active")
            )
            faculties = self.rng.sample(sorted(DEPARTMENTS), k=3)
            for faculty in faculties:
                for department_name in DEPARTMENTS[faculty]:
                    department = self.add_department(institution, department_name)
                    department["faculty"] = faculty
            self.institutions.append(institution)

    def add_department(self, institution: dict[str, Any], name: str) -> dict[str, Any]:
        department = {"id": self.uuid(), "name": name}
        institution["departments"].append(department)
        self.data.add(
            "students.departments", (department["id"], institution["id"], name)
        )
        for start_year in (self.now.year - 3, self.now.year - 2, self.now.year - 1):
            cohort_name = f"{name} {start_year}"
            self.data.add(
                "students.cohorts",
                (
                    self.uuid(),
                    institution["id"],
                    department["id"],
                    cohort_name,
                    start_year,
                    start_year + 4,
                ),
            )
        return department

    def build_employers(self) -> None:
        names: list[str] = []
        for prefix, suffix in EMPLOYER_WORDS:
            for kind in ("Ltd", "Group", "Africa", "Partners"):
                names.append(f"{prefix} {suffix} {kind}")
        for name in names[:EMPLOYERS]:
            slug = name.lower().replace(" ", "-")
            domain = f"{slug}.co.ke"
            status = self.rng.choices(["active", "approved"], weights=[4, 1])[0]
            employer = {"id": self.uuid(), "name": name, "domain": domain}
            self.employers.append(employer)
            phone = f"+2547{self.rng.randrange(10**8):08d}"
            self.data.add(
                "internships.employers",
                (
                    employer["id"],
                    name,
                    f"careers@{domain}",
                    phone,
                    f"https://{domain}",
                    status,
                ),
            )

    def build_opportunities(self) -> None:
        for number in range(OPPORTUNITIES):
            # The first ten belong to the demo employer admin's organisation.
            employer = (
                self.employers[0] if number < 10 else self.rng.choice(self.employers)
            )
            status = self.rng.choices(["OPEN", "DRAFT", "CLOSED"], [75, 10, 15])[0]
            self.opportunities.append(self.opportunity(employer, status))

    def opportunity(self, employer: dict[str, Any], status: str) -> dict[str, Any]:
        rng = self.rng
        faculty = rng.choice(sorted(ROLES_BY_DEPARTMENT))
        title = f"{rng.choice(ROLES_BY_DEPARTMENT[faculty])} Intern"
        skills = rng.sample(SKILLS_BY_DEPARTMENT[faculty], k=rng.randint(2, 4))
        town = rng.choice(TOWNS)
        location_type = rng.choices(["onsite", "hybrid", "remote"], [5, 3, 2])[0]

        if status == "CLOSED":
            deadline = self.now - timedelta(days=rng.randint(20, 200))
        else:
            deadline = self.now + timedelta(days=rng.randint(7, 75))
        start = deadline.date() + timedelta(days=rng.randint(14, 30))
        end = start + timedelta(days=rng.choice([60, 90, 120, 180]))
        paid = rng.random() < 0.6
        restricted = rng.random() < 0.1

        opportunity = {
            "id": self.uuid(),
            "employer_id": employer["id"],
            "status": status,
            "capacity": rng.randint(1, 6),
            "start_date": start,
            "end_date": end,
            "institution_id": (
                rng.choice(self.institutions)["id"] if restricted else None
            ),
            # Published 20 to 60 days before the deadline, and never in the future.
            "created_at": min(
                deadline - timedelta(days=rng.randint(20, 60)), self.past(30)
            ),
        }
        description = (
            f"{employer['name']} offers a {title.lower()}ship in {town}. You will "
            f"work with a mentor on real projects using {', '.join(skills)}."
        )
        self.data.add(
            "internships.opportunities",
            (
                opportunity["id"],
                employer["id"],
                title,
                description,
                skills,
                town,
                location_type,
                opportunity["capacity"],
                Decimal(rng.randrange(10, 60) * 1000) if paid else None,
                "KES" if paid else None,
                start,
                end,
                deadline,
                opportunity["institution_id"],
                status,
                opportunity["created_at"],
            ),
        )
        return opportunity

    def build_students(self) -> None:
        for number in range(STUDENTS):
            self.students.append(self.student(number))

    def student(self, number: int) -> dict[str, Any]:
        rng = self.rng
        institution = (
            self.institutions[0] if number < 2 else rng.choice(self.institutions)
        )
        department = rng.choice(institution["departments"])
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = institution["domains"][-1]
        year = rng.randint(1, 4)
        registration = (
            f"{institution['code']}/{self.now.year - year + 1}/{number + 1:05d}"
        )
        created_at = self.past(365)
        student = {
            "id": self.uuid(),
            "user_id": self.uuid(),
            "full_name": f"{first} {last}",
            "email": f"{first}.{last}{number + 1}@{domain}".lower(),
            "institution": institution,
            "course": department["name"],
            "year_of_study": year,
            "skills": rng.sample(
                SKILLS_BY_DEPARTMENT[department["faculty"]], k=rng.randint(2, 4)
            ),
            "registration": registration,
            "created_at": created_at,
            "trust_level": 2,
        }
        self.data.add(
            "students.affiliation_claims",
            (
                self.uuid(),
                student["id"],
                institution["id"],
                "approved",
                "email_domain",
                registration,
                created_at,
                created_at,
            ),
        )
        return student

    def build_applications(self) -> None:
        listed = [o for o in self.opportunities if o["status"] != "DRAFT"]
        places = {o["id"]: 0 for o in listed}
        supervisor_id = self.supervisor_id
        for student in self.students:
            count = self.rng.choices([0, 1, 2, 3, 4], [15, 30, 25, 20, 10])[0]
            eligible = [
                o
                for o in self.rng.sample(listed, k=min(12, len(listed)))
                if o["institution_id"] in (None, student["institution"]["id"])
            ]
            has_current = False
            for opportunity in eligible[:count]:
                status = self.pick_status(opportunity, places, has_current)
                has_current = has_current or status in CURRENT_PLACEMENT
                if status in PLACE_TAKING:
                    places[opportunity["id"]] += 1
                self.add_application(student, opportunity, status, supervisor_id)
        for student in self.students:
            self.data.add("students.students", self.student_row(student))

    def pick_status(
        self, opportunity: dict[str, Any], places: dict[uuid.UUID, int], current: bool
    ) -> str:
        status = self.rng.choices(
            list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values())
        )[0]
        # Placements at an OPEN opportunity have not started yet.
        if opportunity["status"] == "OPEN" and status in WITH_DATES - {"ACCEPTED"}:
            status = "SHORTLISTED"
        full = places[opportunity["id"]] >= opportunity["capacity"]
        if status in PLACE_TAKING and full:
            return "REJECTED"
        if status in CURRENT_PLACEMENT and current:
            return "SHORTLISTED"
        return status

    def add_application(
        self,
        student: dict[str, Any],
        opportunity: dict[str, Any],
        status: str,
        supervisor_id: uuid.UUID,
    ) -> None:
        institution = student["institution"]
        created_at = max(opportunity["created_at"], self.past(120))
        changed_at = created_at + timedelta(days=self.rng.randint(0, 20))
        dated = status in WITH_DATES
        supervised = opportunity["employer_id"] == self.employers[0][
            "id"
        ] and status in {"ACTIVE", "COMPLETED", "CERTIFIED"}
        if status == "COMPLETED":
            student["trust_level"] = max(student["trust_level"], 3)
        if status == "CERTIFIED":
            student["trust_level"] = 4
        snapshot = {
            "student_id": str(student["id"]),
            "full_name": student["full_name"],
            "email": student["email"],
            "course": student["course"],
            "year_of_study": student["year_of_study"],
            "skills": student["skills"],
            "institution": {"id": str(institution["id"]), "name": institution["name"]},
        }
        reasons = {
            "WITHDRAWN": "I accepted another offer.",
            "TERMINATED": "The placement ended early by agreement.",
        }
        self.data.add(
            "internships.applications",
            (
                self.uuid(),
                opportunity["id"],
                opportunity["employer_id"],
                student["id"],
                student["user_id"],
                institution["id"],
                Jsonb(snapshot),
                f"I would like to bring my {student['course']} studies to your team.",
                status,
                opportunity["start_date"] if dated else None,
                opportunity["end_date"] if dated else None,
                supervisor_id if supervised else None,
                reasons.get(status),
                min(changed_at, self.now),
                created_at,
            ),
        )

    def student_row(self, student: dict[str, Any]) -> tuple[Any, ...]:
        return (
            student["id"],
            student["user_id"],
            student["full_name"],
            student["email"],
            student["institution"]["id"],
            student["registration"],
            student["course"],
            student["year_of_study"],
            student["skills"],
            True,
            student["trust_level"],
            student["created_at"],
        )

    def build_accounts(self) -> None:
        institution = self.institutions[0]
        employer = self.employers[0]
        staff = [
            ("sysadmin@edulink-demo.org", "Sam Operator", "system_admin", ()),
            ("support@edulink-demo.org", "Sue Helpdesk", "support_staff", ()),
            (
                f"registrar@{institution['domains'][0]}",
                "Grace Registrar",
                "institution_admin",
                (institution["id"],),
            ),
            (
                f"hr@{employer['domain']}",
                "Henry Recruiter",
                "employer_admin",
                (employer["id"],),
            ),
        ]
        for email, name, role, org_ids in staff:
            self.data.accounts.append(
                DemoAccount(email, name, role, self.uuid(), org_ids)
            )
        self.data.accounts.append(
            DemoAccount(
                f"mentor@{employer['domain']}",
                "Mary Mentor",
                "supervisor",
                self.supervisor_id,
                (employer["id"],),
            )
        )
        for student in self.students[:2]:
            self.data.accounts.append(
                DemoAccount(
                    student["email"],
                    student["full_name"],
                    "student",
                    student["user_id"],
                )
            )


def generate(now: datetime | None = None) -> Dataset:
    """Return the demo dataset, the same on every call apart from the dates."""
    return Generator(now or datetime.now(UTC)).build()


def existing_schemas(connection: psycopg.Connection[Any]) -> set[str]:
    rows = connection.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        " WHERE table_schema IN ('students', 'internships', 'gateway')"
    ).fetchall()
    return {row[0] for row in rows}


def copy_rows(
    connection: psycopg.Connection[Any], table: str, rows: Iterable[tuple[Any, ...]]
) -> None:
    """COPY ``rows`` into ``table``, each as the first version of its entity."""
    statement = f"COPY {table} ({COLUMNS[table]}, version) FROM STDIN"
    with connection.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row((*row, 1))


def account_rows(accounts: Sequence[DemoAccount]) -> list[tuple[Any, ...]]:
    """Hash each demo password with the gateway's own Argon2id settings."""
    from gateway.passwords import Passwords
    from gateway.settings import GatewaySettings

    fields = GatewaySettings.model_fields
    passwords = Passwords(
        time_cost=fields["password_hash_time_cost"].default,
        memory_kib=fields["password_hash_memory_kib"].default,
        parallelism=fields["password_hash_parallelism"].default,
    )
    return [
        (
            account.user_id,
            account.email,
            passwords.hash(account.password),
            account.name,
            account.role,
            list(account.org_ids),
            True,
            "active",
        )
        for account in accounts
    ]


def already_seeded(connection: psycopg.Connection[Any]) -> bool:
    """Create the marker tables if needed; tell whether this seed was loaded."""
    connection.execute("CREATE SCHEMA IF NOT EXISTS demo")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS demo.seed_runs ("
        " seed integer PRIMARY KEY, seeded_at timestamptz NOT NULL DEFAULT now())"
    )
    connection.execute(
        "CREATE TABLE IF NOT EXISTS demo.accounts ("
        " email text PRIMARY KEY, position integer NOT NULL,"
        " name text NOT NULL, role text NOT NULL,"
        " user_id uuid NOT NULL, org_ids uuid[] NOT NULL, password text NOT NULL)"
    )
    row = connection.execute(
        "SELECT 1 FROM demo.seed_runs WHERE seed = %s", (SEED,)
    ).fetchone()
    return row is not None


def loaded_accounts(connection: psycopg.Connection[Any]) -> list[DemoAccount]:
    """Return the demo accounts as loaded, which an older generator may have made."""
    rows = connection.execute(
        "SELECT email, name, role, user_id, org_ids, password FROM demo.accounts"
        " ORDER BY position"
    ).fetchall()
    return [
        DemoAccount(email, name, role, user_id, tuple(org_ids), password)
        for email, name, role, user_id, org_ids, password in rows
    ]


def record_accounts(
    connection: psycopg.Connection[Any], accounts: Sequence[DemoAccount]
) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO demo.accounts"
            " (email, position, name, role, user_id, org_ids, password)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (a.email, n, a.name, a.role, a.user_id, list(a.org_ids), a.password)
                for n, a in enumerate(accounts)
            ],
        )


def seed_demo(database_url: str) -> list[DemoAccount]:
    """Insert the demo data unless it is there already; return the demo accounts."""
    started = time.monotonic()
    dataset = generate()
    with psycopg.connect(database_url) as connection:
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        if already_seeded(connection):
            log.info("demo data is already loaded (demo.seed_runs); nothing to do")
            return loaded_accounts(connection)
        tables = existing_schemas(connection)
        if "gateway.accounts" in tables:
            dataset.rows["gateway.accounts"] = account_rows(dataset.accounts)
            record_accounts(connection, dataset.accounts)
        for table in COLUMNS:
            if table not in tables:
                log.info("%s does not exist; its demo rows are skipped", table)
                continue
            copy_rows(connection, table, dataset.rows.get(table, []))
        connection.execute("INSERT INTO demo.seed_runs (seed) VALUES (%s)", (SEED,))
    counts = ", ".join(f"{len(rows)} {table}" for table, rows in dataset.rows.items())
    log.info("loaded demo data in %.1f s: %s", time.monotonic() - started, counts)
    return dataset.accounts if "gateway.accounts" in tables else []


def seed_for_local_run(env: Mapping[str, str]) -> list[DemoAccount]:
    """Seed the database of a local run unless ``SEED_DEMO=0``.

    A database error is logged and the run goes on without demo accounts.
    """
    if env.get("SEED_DEMO", "1") == "0":
        log.info("SEED_DEMO=0: no demo data")
        return []
    try:
        return seed_demo(env["DATABASE_URL"])
    except psycopg.Error as error:
        log.warning("loading the demo data failed, continuing without it: %s", error)
        return []


def print_accounts(accounts: Sequence[DemoAccount]) -> None:
    if not accounts:
        return
    print("\nDemo accounts (email / password / role):", flush=True)
    for account in accounts:
        print(f"  {account.email:<40} {account.password}  {account.role}")
    print(flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="seed_demo: %(message)s")
    database_url = os.environ.get("DATABASE_URL", "postgresql://localhost/edulink")
    print_accounts(seed_demo(database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())

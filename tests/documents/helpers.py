"""Builders for documents tests: people, placements in the real services, PDF text."""

from __future__ import annotations

import io
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pypdf
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from documents.db import db
from edulink.auth import Role
from edulink.jobs.schema import job_table
from edulink.testing.tokens import TokenFactory

PROBLEM_JSON = "application/problem+json"


class Person:
    """A user with a stable id, a role and organisations, who mints fresh tokens."""

    def __init__(
        self, tokens: TokenFactory, role: Role, *, user_id: uuid.UUID, **claims: Any
    ) -> None:
        self.user_id = user_id
        self.role = role
        self.claims = claims
        self._tokens = tokens

    @property
    def headers(self) -> dict[str, str]:
        token = self._tokens.mint(self.role, subject=self.user_id, **self.claims)
        return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """One institution and employer, and two students with placements there.

    Amina's placement is CERTIFIED, Baraka's ACCEPTED.
    """

    tokens: TokenFactory
    system_admin: Person
    institution_admin: Person
    employer_admin: Person
    amina: Person
    baraka: Person
    institution_id: str
    employer_id: str
    opportunity: dict[str, Any]
    amina_application: str
    baraka_application: str
    start_date: date
    end_date: date
    extras: dict[str, Any] = field(default_factory=dict)

    def person(self, role: Role, **claims: Any) -> Person:
        return Person(self.tokens, role, user_id=uuid.uuid4(), **claims)


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _address = self._server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()


def hostile_markup(url: str) -> str:
    """Markup and CSS that would make a careless renderer fetch ``url``."""
    return (
        f'<img src="{url}/img.png"><style>body {{ background: url({url}/bg.png) }}'
        f'</style><link rel="stylesheet" href="{url}/x.css"> url({url}/css)'
    )


def _created(response: TestResponse) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def _move(
    client: FlaskClient, actor: Person, application_id: str, to: str, **fields: Any
) -> None:
    current = client.get(
        f"/api/v1/applications/{application_id}", headers=actor.headers
    )
    response = client.post(
        f"/api/v1/applications/{application_id}/transitions",
        json={"to": to, **fields},
        headers={**actor.headers, "If-Match": current.headers["ETag"]},
    )
    assert response.status_code == 200, response.get_json()


def _student(
    students: FlaskClient,
    tokens: TokenFactory,
    institution_id: str,
    *,
    full_name: str,
    email: str,
    registration_number: str,
) -> Person:
    student = Person(tokens, Role.student, user_id=uuid.uuid4(), email=email)
    _created(
        students.post(
            "/api/v1/students/me",
            json={
                "full_name": full_name,
                "registration_number": registration_number,
                "course": "BSc Computer Science",
                "year_of_study": 3,
                "skills": ["Python", "Docker"],
            },
            headers=student.headers,
        )
    )
    claim = _created(
        students.post(
            "/api/v1/students/me/claims",
            json={"institution_id": institution_id},
            headers=student.headers,
        )
    )
    assert claim["status"] == "approved", claim
    return student


def _opportunity(
    internships: FlaskClient, employer_admin: Person, employer_id: str, start: date
) -> dict[str, Any]:
    body = {
        "employer_id": employer_id,
        "title": "Backend engineering intern",
        "description": "Build Flask services on PostgreSQL.",
        "skills": ["Python", "SQL"],
        "location": "Nairobi",
        "location_type": "hybrid",
        "capacity": 5,
        "stipend": {"amount": "25000.00", "currency": "KES"},
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=90)).isoformat(),
        "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
    }
    created = _created(
        internships.post(
            "/api/v1/opportunities", json=body, headers=employer_admin.headers
        )
    )
    current = internships.get(
        f"/api/v1/opportunities/{created['id']}", headers=employer_admin.headers
    )
    return _created(
        internships.patch(
            f"/api/v1/opportunities/{created['id']}",
            json={"status": "OPEN"},
            headers={**employer_admin.headers, "If-Match": current.headers["ETag"]},
        )
    )


def _apply(
    internships: FlaskClient, student: Person, opportunity_id: str, cover_letter: str
) -> str:
    response = internships.post(
        f"/api/v1/opportunities/{opportunity_id}/applications",
        json={"cover_letter": cover_letter},
        headers=student.headers,
    )
    return _created(response)["id"]


def build_world(
    *,
    internships: FlaskClient,
    students: FlaskClient,
    tokens: TokenFactory,
    hostile_url: str,
) -> World:
    """Create the institution, employer, opportunity and placements through the APIs."""
    system_admin = Person(tokens, Role.system_admin, user_id=uuid.uuid4())
    institution = _created(
        students.post(
            "/api/v1/institutions",
            json={"name": "Kilima University", "email_domains": ["kilima.example"]},
            headers=system_admin.headers,
        )
    )
    employer = _created(
        internships.post(
            "/api/v1/employers",
            json={
                "name": "Savanna Labs",
                "contact_email": "jobs@savanna.example",
                "status": "active",
            },
            headers=system_admin.headers,
        )
    )
    institution_admin = Person(
        tokens,
        Role.institution_admin,
        user_id=uuid.uuid4(),
        org_ids=[institution["id"]],
    )
    employer_admin = Person(
        tokens, Role.employer_admin, user_id=uuid.uuid4(), org_ids=[employer["id"]]
    )
    start = datetime.now(UTC).date() + timedelta(days=21)
    opportunity = _opportunity(internships, employer_admin, employer["id"], start)

    amina = _student(
        students,
        tokens,
        institution["id"],
        full_name="Amina Njoroge",
        email="amina@kilima.example",
        registration_number="KU/CS/0001",
    )
    baraka = _student(
        students,
        tokens,
        institution["id"],
        full_name=f"Baraka Otieno {hostile_markup(hostile_url)}"[:200],
        email="baraka@kilima.example",
        registration_number="KU/CS/0002",
    )
    amina_application = _apply(
        internships,
        amina,
        opportunity["id"],
        "I build small web services.\nMarkup stays text: "
        + hostile_markup(hostile_url),
    )
    baraka_application = _apply(
        internships, baraka, opportunity["id"], "Keen to learn."
    )

    end = start + timedelta(days=83)
    dates = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    for application in (amina_application, baraka_application):
        _move(internships, employer_admin, application, "SHORTLISTED")
        _move(internships, employer_admin, application, "ACCEPTED", **dates)
    _move(internships, employer_admin, amina_application, "ACTIVE")
    _move(internships, employer_admin, amina_application, "COMPLETED")
    _move(internships, institution_admin, amina_application, "CERTIFIED")

    return World(
        tokens=tokens,
        system_admin=system_admin,
        institution_admin=institution_admin,
        employer_admin=employer_admin,
        amina=amina,
        baraka=baraka,
        institution_id=institution["id"],
        employer_id=employer["id"],
        opportunity=opportunity,
        amina_application=amina_application,
        baraka_application=baraka_application,
        start_date=start,
        end_date=end,
    )


def request_document(
    client: FlaskClient, actor: Person, kind: str, **body: Any
) -> TestResponse:
    return client.post(
        "/api/v1/documents", json={"kind": kind, **body}, headers=actor.headers
    )


def report_body(world: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "institution_id": world.institution_id,
        "period_start": (world.start_date - timedelta(days=30)).isoformat(),
        "period_end": (world.end_date + timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return body


def pdf_text(content: bytes) -> str:
    """Return the text of every page of a PDF, whitespace collapsed to spaces."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    text = " ".join(page.extract_text() for page in reader.pages)
    return " ".join(text.split())


def documents_with_status(status: str) -> int:
    assert db.engine is not None
    with db.engine.connect() as connection:
        return connection.scalar(
            sa.text("SELECT count(*) FROM documents.documents WHERE status = :status"),
            {"status": status},
        )


def jobs_named(name: str) -> list[dict[str, Any]]:
    """Return the payloads of the enqueued jobs named ``name``, oldest first."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        return list(
            connection.scalars(
                sa.select(job_table.c.payload)
                .where(job_table.c.name == name)
                .order_by(job_table.c.queue_job_id)
            )
        )


def queued_jobs(queue: str) -> int:
    """Count the jobs of ``queue`` that wait to run."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        return connection.scalar(
            sa.select(sa.func.count())
            .select_from(job_table)
            .where(job_table.c.queue == queue, job_table.c.status == "queued")
        )


def job_outcome(job_id: str) -> tuple[str, str | None]:
    """Return the status and last error of the job ``job_id``."""
    assert db.engine is not None
    with db.engine.connect() as connection:
        row = connection.execute(
            sa.select(job_table.c.status, job_table.c.error).where(
                job_table.c.id == job_id
            )
        ).one()
    return row.status, row.error

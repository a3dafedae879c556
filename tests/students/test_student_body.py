"""student_body, the batch lookup's serialiser, against StudentSchema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from students.models import Student
from students.schemas import StudentSchema, student_body


def _student(**fields: object) -> Student:
    created = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "full_name": "Amina Njoroge",
        "email": "amina@uni.example.ac.ke",
        "institution_id": uuid.uuid4(),
        "registration_number": "SCT-221-001/2024",
        "course": "BSc Computer Science",
        "year_of_study": 3,
        "skills": ["Python", "SQL"],
        "verified": True,
        "trust_level": 2,
        "created_at": created,
        "updated_at": created.replace(day=2),
        "version": 4,
    }
    values.update(fields)
    return Student(**values)


def test_student_body_matches_schema():
    student = _student()

    assert student_body(student) == StudentSchema().dump(student)


def test_student_body_matches_schema_with_nulls():
    student = _student(
        institution_id=None,
        registration_number=None,
        course=None,
        year_of_study=None,
        skills=[],
        verified=False,
        trust_level=0,
    )

    assert student_body(student) == StudentSchema().dump(student)

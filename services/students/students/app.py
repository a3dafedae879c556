"""Students service app factory: ``gunicorn "students.app:create_app()"``."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from edulink.app import create_service_app
from edulink.settings import load_settings
from students.db import db
from students.models import SCHEMA
from students.settings import StudentsSettings
from students.views import institutions_blp, students_blp

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(**settings_overrides: object) -> Flask:
    """Build the app from environment variables; keyword arguments override them."""
    settings = load_settings(StudentsSettings, **settings_overrides)
    return create_service_app(
        name=SCHEMA,
        settings=settings,
        blueprints=[students_blp, institutions_blp],
        migrations_dir=MIGRATIONS_DIR,
        api_title="Edulink students API",
        api_prefix="/api/v1/students",
        database=db,
    )

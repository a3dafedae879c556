"""Internships service app factory: ``gunicorn "internships.app:create_app()"``."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from edulink.app import create_service_app
from edulink.http import service_client_from_settings
from edulink.jobs.api import jobs_admin_blueprint
from edulink.jobs.cli import register_cli
from edulink.ledger.api import ledger_blueprint
from edulink.settings import load_settings
from internships.applications import can_view_ledger
from internships.db import db
from internships.jobs import registry
from internships.models import LEDGER, SCHEMA
from internships.settings import InternshipsSettings
from internships.student_directory import HttpStudentDirectory
from internships.views import (
    DIRECTORY_EXTENSION,
    applications_blp,
    employers_blp,
    opportunities_blp,
    placements_blp,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(**settings_overrides: object) -> Flask:
    """Build the app from environment variables; keyword arguments override them."""
    settings = load_settings(InternshipsSettings, **settings_overrides)
    app = create_service_app(
        name=SCHEMA,
        settings=settings,
        blueprints=[
            employers_blp,
            opportunities_blp,
            applications_blp,
            placements_blp,
            ledger_blueprint(
                LEDGER, url_prefix="/api/v1/internships", can_view=can_view_ledger
            ),
            jobs_admin_blueprint(SCHEMA, url_prefix="/api/v1/internships/jobs"),
        ],
        migrations_dir=MIGRATIONS_DIR,
        api_title="Edulink internships API",
        api_prefix="/api/v1/internships",
        database=db,
    )
    client = service_client_from_settings(
        settings.students_url, settings, name="students"
    )
    app.extensions[DIRECTORY_EXTENSION] = HttpStudentDirectory(client)
    register_cli(app, registry)
    return app

"""Students service app factory: ``gunicorn "students.app:create_app()"``."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from edulink.app import create_service_app
from edulink.auth import Principal
from edulink.jobs.api import jobs_admin_blueprint
from edulink.jobs.cli import register_cli
from edulink.ledger.api import ledger_blueprint
from edulink.settings import load_settings
from students.db import db
from students.jobs import registry
from students.models import LEDGER, SCHEMA
from students.services import can_view_ledger
from students.settings import StudentsSettings
from students.views import institutions_blp, students_blp

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(**settings_overrides: object) -> Flask:
    """Build the app from environment variables; keyword arguments override them."""
    settings = load_settings(StudentsSettings, **settings_overrides)
    app = create_service_app(
        name=SCHEMA,
        settings=settings,
        blueprints=[
            students_blp,
            institutions_blp,
            ledger_blueprint(
                LEDGER, url_prefix="/api/v1/students", can_view=_can_view_ledger
            ),
            jobs_admin_blueprint(SCHEMA, url_prefix="/api/v1/students/jobs"),
        ],
        migrations_dir=MIGRATIONS_DIR,
        api_title="Edulink students API",
        api_prefix="/api/v1/students",
        database=db,
    )
    register_cli(app, registry)
    return app


def _can_view_ledger(actor: Principal, entity_type: str, entity_id: str) -> bool:
    return can_view_ledger(db.session, actor, entity_type, entity_id)

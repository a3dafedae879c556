"""Notifications service app factory: ``gunicorn "notifications.app:create_app()"``.

The same app runs the worker: ``flask --app notifications.app:create_app worker``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from edulink.app import create_service_app
from edulink.jobs.api import jobs_admin_blueprint
from edulink.jobs.cli import register_cli
from edulink.settings import load_settings
from notifications.contracts import QUEUE
from notifications.db import db
from notifications.jobs import (
    PUBLISHER_EXTENSION,
    RENDERER_EXTENSION,
    SENDER_EXTENSION,
    registry,
)
from notifications.mail import EmailRenderer, sender_from_settings
from notifications.models import SCHEMA
from notifications.realtime import publisher_from_settings
from notifications.settings import NotificationsSettings
from notifications.views import (
    alerts_blp,
    notifications_blp,
    realtime_blp,
    support_blp,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(**settings_overrides: object) -> Flask:
    """Build the app from environment variables; keyword arguments override them."""
    settings = load_settings(NotificationsSettings, **settings_overrides)
    app = create_service_app(
        name=SCHEMA,
        settings=settings,
        blueprints=[
            notifications_blp,
            realtime_blp,
            support_blp,
            alerts_blp,
            jobs_admin_blueprint(QUEUE, url_prefix="/api/v1/notifications/jobs"),
        ],
        migrations_dir=MIGRATIONS_DIR,
        api_title="Edulink notifications API",
        api_prefix="/api/v1/notifications",
        database=db,
    )
    app.extensions[PUBLISHER_EXTENSION] = publisher_from_settings(settings)
    app.extensions[SENDER_EXTENSION] = sender_from_settings(settings)
    app.extensions[RENDERER_EXTENSION] = EmailRenderer()
    register_cli(app, registry)
    return app

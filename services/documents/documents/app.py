"""Documents service app factory: ``gunicorn "documents.app:create_app()"``."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from documents.db import db
from documents.jobs import TOOLKIT_EXTENSION, Toolkit, registry
from documents.models import LEDGER, SCHEMA
from documents.pdf_process import MIB, IsolatedRenderer, RenderLimits
from documents.rendering import Fonts, MissingFontError
from documents.settings import DocumentsSettings
from documents.sources import HttpSources
from documents.views import can_view_ledger, documents_blp, verify_blp
from edulink.app import create_service_app
from edulink.http import service_client_from_settings
from edulink.jobs.api import jobs_admin_blueprint
from edulink.jobs.cli import register_cli
from edulink.ledger.api import ledger_blueprint
from edulink.settings import load_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(**settings_overrides: object) -> Flask:
    """Build the app from environment variables; keyword arguments override them."""
    settings = load_settings(DocumentsSettings, **settings_overrides)
    app = create_service_app(
        name=SCHEMA,
        settings=settings,
        blueprints=[
            documents_blp,
            verify_blp,
            ledger_blueprint(
                LEDGER, url_prefix="/api/v1/documents", can_view=can_view_ledger
            ),
            jobs_admin_blueprint(SCHEMA, url_prefix="/api/v1/documents/jobs"),
        ],
        migrations_dir=MIGRATIONS_DIR,
        api_title="Edulink documents API",
        api_prefix="/api/v1/documents",
        database=db,
    )
    app.extensions[TOOLKIT_EXTENSION] = build_toolkit(settings)
    register_cli(app, registry)
    return app


def build_toolkit(settings: DocumentsSettings) -> Toolkit:
    """Build the source clients, fonts and bounded renderer that ``settings`` name."""
    try:
        fonts = Fonts.from_dir(settings.font_dir)
    except MissingFontError as error:
        # Exits like load_settings does for a bad variable: no render could work.
        raise SystemExit(f"invalid configuration, FONT_DIR: {error}") from None
    sources = HttpSources(
        internships=service_client_from_settings(
            settings.internships_url, settings, name="internships"
        ),
        students=service_client_from_settings(
            settings.students_url, settings, name="students"
        ),
        max_report_placements=settings.max_report_placements,
    )
    renderer = IsolatedRenderer(
        limits=RenderLimits(
            timeout=settings.render_timeout,
            memory_bytes=settings.render_memory_mb * MIB,
        ),
        assets=fonts.assets(),
    )
    return Toolkit(
        sources=sources,
        renderer=renderer,
        fonts=fonts,
        public_base_url=settings.public_base_url,
    )

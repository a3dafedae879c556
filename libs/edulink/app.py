"""Assemble a service's Flask app from the shared platform parts."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_smorest import Api, Blueprint

from edulink.auth import init_auth, verifier_from_settings
from edulink.db import Database
from edulink.errors import UnprocessableContent, register_error_handlers
from edulink.health import init_health
from edulink.logs import configure_logging, init_request_ids
from edulink.migrations import register_db_cli
from edulink.pagination import CursorCodec
from edulink.settings import PlatformSettings

log = logging.getLogger(__name__)

BEARER_SCHEME = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def create_service_app(
    *,
    name: str,
    settings: PlatformSettings,
    blueprints: Iterable[Blueprint],
    migrations_dir: Path,
    api_title: str,
    api_prefix: str,
    database: Database,
) -> Flask:
    """Build a service app: logging, request ids, database, auth, errors, health, API.

    The OpenAPI document is served at ``{api_prefix}/openapi.json``.
    """
    configure_logging(name, settings.log_level)
    app = Flask(name)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE=api_title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=api_prefix,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": BEARER_SCHEME}},
            "security": [{"bearerAuth": []}],
        },
        JSON_SORT_KEYS=False,
    )
    app.extensions["edulink.settings"] = settings
    app.extensions["edulink.cursor_codec"] = CursorCodec(
        settings.cursor_secret.get_secret_value()
    )

    init_request_ids(app)
    app.before_request(reject_nul_characters)
    database.init_app(app, settings.database_url, pool_size=settings.db_pool_size)
    init_auth(app, verifier_from_settings(settings))

    api = Api(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.extensions["edulink.api"] = api

    # Registered after Api so these handlers replace flask-smorest's JSON errors.
    register_error_handlers(app)
    init_health(app, migrations_dir=migrations_dir, schema=name)
    register_db_cli(app, migrations_dir, schema=name)
    log.info("%s app created", name)
    return app


# A JSON string escape of NUL that is not itself an escaped backslash.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def reject_nul_characters() -> None:
    """Reject NUL characters in query parameters and JSON bodies with a 422.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail
    deep in a query as a 500. The error names the offending field.
    """
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            _raise_nul("query", name.replace("\x00", ""))
    if request.is_json and request.content_length:
        body = request.get_data(cache=True)
        if b"\x00" in body or _JSON_NUL.search(body):
            data = request.get_json(silent=True)
            _raise_nul("json", _path_with_nul(data) or "_body")


def _path_with_nul(value: Any, path: str = "") -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, inner in items:
        inner_path = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return inner_path.replace("\x00", "")
        found = _path_with_nul(inner, inner_path)
        if found is not None:
            return found
    return None


def _raise_nul(location: str, field: str) -> None:
    raise UnprocessableContent(
        f"The {location} field {field!r} contains a NUL character. Remove it.",
        errors=[
            {
                "location": location,
                "field": field,
                "detail": "NUL characters are not allowed.",
            }
        ],
    )

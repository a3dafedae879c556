"""Gateway app factory: ``gunicorn "gateway.app:create_app()"``.

The app owns identity (accounts, sign-in tokens, signing keys, service
clients) and runs the ``/_policy`` check that nginx calls. nginx routes
``/api/v1/auth``, ``/api/v1/accounts``, ``/.well-known/jwks.json`` and the
API docs page ``/api/docs`` here.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, request
from flask_smorest import Api

from edulink.app import BEARER_SCHEME, reject_nul_characters
from edulink.auth import init_auth
from edulink.errors import register_error_handlers
from edulink.health import init_health
from edulink.logs import configure_logging, init_request_ids
from edulink.migrations import register_db_cli
from edulink.settings import load_settings
from gateway.cli import register_cli
from gateway.components import EXTENSION, Components
from gateway.db import db
from gateway.docs import docs_blp
from gateway.keys import TokenSigner, local_verifier
from gateway.mail import EmailOutbox, JobOutbox, MemoryOutbox
from gateway.models import SCHEMA
from gateway.passwords import Passwords
from gateway.policy_check import policy_blp
from gateway.ratelimit.limiter import init_limiter, limit_view, policy_limits
from gateway.ratelimit.policies import POLICIES, CheckedBy, with_overrides
from gateway.services import AccountConfig
from gateway.sessions import TokenConfig
from gateway.settings import EmailDelivery, GatewaySettings
from gateway.views import (
    accounts_blp,
    auth_blp,
    jwks_blp,
    set_aside_basic_credentials,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
API_PREFIX = "/api/v1/auth"


def create_app(**settings_overrides: object) -> Flask:
    """Build the app from environment variables; keyword arguments override them."""
    settings = load_settings(GatewaySettings, **settings_overrides)
    configure_logging(SCHEMA, settings.log_level)
    app = Flask(SCHEMA)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="Edulink accounts and auth API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "components": {"securitySchemes": {"bearerAuth": BEARER_SCHEME}}
        },
    )
    app.extensions["edulink.settings"] = settings

    init_request_ids(app)
    app.before_request(_reject_nul_characters)
    db.init_app(app, settings.database_url, pool_size=settings.db_pool_size)
    parts = build_components(settings)
    app.extensions[EXTENSION] = parts
    app.before_request(set_aside_basic_credentials)
    init_auth(app, parts.verifier)

    api = Api(app)
    api.register_blueprint(accounts_blp)
    api.register_blueprint(auth_blp)
    app.register_blueprint(jwks_blp)
    app.register_blueprint(policy_blp)
    app.register_blueprint(docs_blp)
    register_error_handlers(app)

    limiter = init_limiter(app, settings)
    limit_view(
        app,
        "policy.check",
        policy_limits(limiter, parts.policies, CheckedBy.policy_check),
    )
    limit_view(
        app, "auth.login", policy_limits(limiter, parts.policies, CheckedBy.login_view)
    )

    init_health(app, migrations_dir=MIGRATIONS_DIR, schema=SCHEMA)
    register_db_cli(app, MIGRATIONS_DIR, schema=SCHEMA)
    register_cli(app)
    log.info(
        "gateway app created: rate limits %s in %s mode",
        "on" if settings.ratelimit_enabled else "off",
        settings.ratelimit_fail_mode,
    )
    return app


def build_components(settings: GatewaySettings) -> Components:
    """Build the password hasher, outbox, token signer and verifier from settings."""
    tokens = TokenConfig(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
        service_ttl=settings.service_token_ttl,
    )
    keep_retired_for = timedelta(
        seconds=max(tokens.access_ttl, tokens.service_ttl) + settings.token_leeway
    )
    assert db.engine is not None
    assert db.sessionmaker is not None
    outbox: EmailOutbox = (
        MemoryOutbox()
        if settings.email_delivery is EmailDelivery.memory
        else JobOutbox()
    )
    return Components(
        settings=settings,
        passwords=Passwords(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        ),
        outbox=outbox,
        signer=TokenSigner(db.sessionmaker),
        verifier=local_verifier(
            db.engine,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            keep_retired_for=keep_retired_for,
            extra_file=settings.jwks_extra_file,
            leeway_seconds=settings.token_leeway,
        ),
        accounts=AccountConfig(
            app_url=settings.app_url.rstrip("/"),
            verification_ttl=timedelta(seconds=settings.verification_token_ttl),
            password_reset_ttl=timedelta(seconds=settings.password_reset_token_ttl),
            invitation_ttl=timedelta(seconds=settings.invitation_ttl),
        ),
        tokens=tokens,
        policies=with_overrides(POLICIES, settings.ratelimit_overrides),
    )


def _reject_nul_characters() -> None:
    # The policy check responds to nginx's auth_request, which passes on only
    # 2xx, 401 and 403. The service behind it validates the request itself.
    if request.endpoint != "policy.check":
        reject_nul_characters()

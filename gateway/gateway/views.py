"""HTTP endpoints: accounts, sign-in tokens and the JWKS. Rules live in services."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import Response, jsonify, request
from flask_smorest import Blueprint

from edulink.auth import Role, require_principal
from edulink.errors import BadRequest, Unauthorized
from gateway import services, sessions
from gateway.components import components
from gateway.db import db
from gateway.keys import ensure_signing_key, published_jwks
from gateway.models import Account
from gateway.schemas import (
    AccountSchema,
    EmailSchema,
    InvitationAcceptSchema,
    InvitationCreateSchema,
    InvitationSchema,
    LoginSchema,
    PasswordResetSchema,
    RefreshSchema,
    RegistrationSchema,
    TokenRedemptionSchema,
    TokenSchema,
)

accounts_blp = Blueprint(
    "accounts", __name__, url_prefix="/api/v1/accounts", description="Accounts"
)
auth_blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="Sign-in tokens"
)
jwks_blp = FlaskBlueprint("jwks", __name__)

NO_STORE = {"Cache-Control": "no-store"}


def _account_body(account: Account) -> dict[str, Any]:
    return AccountSchema().dump(account)


# Accounts.


@accounts_blp.route("", methods=["POST"])
@accounts_blp.arguments(RegistrationSchema)
@accounts_blp.response(201, AccountSchema)
def register(data: dict[str, Any]) -> Any:
    """Sign up as a student; a verification link is emailed."""
    parts = components()
    account = services.register_student(
        db.session,
        email=data["email"],
        password=data["password"],
        name=data["name"],
        passwords=parts.passwords,
        outbox=parts.outbox,
        config=parts.accounts,
    )
    db.session.commit()
    return account


@accounts_blp.route("/me", methods=["GET"])
@accounts_blp.response(200, AccountSchema)
def me() -> Any:
    """Return the signed-in user's account."""
    principal = require_principal(*[role for role in Role if role is not Role.service])
    return db.session.get_one(Account, principal.user_id)


@accounts_blp.route("/verify-email", methods=["POST"])
@accounts_blp.arguments(TokenRedemptionSchema)
@accounts_blp.response(200, AccountSchema)
def verify_email(data: dict[str, Any]) -> Any:
    """Redeem the emailed verification token."""
    account = services.verify_email(db.session, token=data["token"])
    db.session.commit()
    return account


@accounts_blp.route("/verify-email/resend", methods=["POST"])
@accounts_blp.response(202)
def resend_verification() -> Any:
    """Email a new verification link to the signed-in user."""
    principal = require_principal(*[role for role in Role if role is not Role.service])
    account = db.session.get_one(Account, principal.user_id)
    if not account.email_verified:
        parts = components()
        services.send_verification(
            db.session, account=account, outbox=parts.outbox, config=parts.accounts
        )
        db.session.commit()
    return Response(status=202)


@accounts_blp.route("/password-reset", methods=["POST"])
@accounts_blp.arguments(EmailSchema)
@accounts_blp.response(202)
def request_password_reset(data: dict[str, Any]) -> Any:
    """Email a reset link if the address has an account; 202 either way."""
    parts = components()
    services.request_password_reset(
        db.session, email=data["email"], outbox=parts.outbox, config=parts.accounts
    )
    db.session.commit()
    return Response(status=202)


@accounts_blp.route("/password-reset/confirm", methods=["POST"])
@accounts_blp.arguments(PasswordResetSchema)
@accounts_blp.response(204)
def confirm_password_reset(data: dict[str, Any]) -> Any:
    """Set a new password with the emailed token; every session ends."""
    services.reset_password(
        db.session,
        token=data["token"],
        password=data["password"],
        passwords=components().passwords,
    )
    db.session.commit()
    return Response(status=204)


@accounts_blp.route("/invitations", methods=["POST"])
@accounts_blp.arguments(InvitationCreateSchema)
@accounts_blp.response(201, InvitationSchema)
def create_invitation(data: dict[str, Any]) -> Any:
    """Invite staff: system admins anyone, organisation admins into their orgs."""
    inviter = require_principal(
        Role.system_admin, Role.employer_admin, Role.institution_admin
    )
    parts = components()
    invitation = services.invite(
        db.session,
        inviter=inviter,
        email=data["email"],
        role=Role(data["role"]),
        org_ids=list(data["org_ids"]),
        outbox=parts.outbox,
        config=parts.accounts,
    )
    db.session.commit()
    return invitation


@accounts_blp.route("/invitations/accept", methods=["POST"])
@accounts_blp.arguments(InvitationAcceptSchema)
@accounts_blp.response(201, AccountSchema)
def accept_invitation(data: dict[str, Any]) -> Any:
    """Create the invited account with a name and password."""
    account = services.accept_invitation(
        db.session,
        token=data["token"],
        name=data["name"],
        password=data["password"],
        passwords=components().passwords,
    )
    db.session.commit()
    return account


# Tokens.


@auth_blp.route("/login", methods=["POST"])
@auth_blp.arguments(LoginSchema)
@auth_blp.response(200, TokenSchema)
def login(data: dict[str, Any]) -> Any:
    """Exchange email and password for an access token and a refresh token."""
    parts = components()
    issued = sessions.login(
        db.session,
        email=data["email"],
        password=data["password"],
        passwords=parts.passwords,
        signer=parts.signer,
        config=parts.tokens,
    )
    db.session.commit()
    return issued.body(), 200, NO_STORE


@auth_blp.route("/refresh", methods=["POST"])
@auth_blp.arguments(RefreshSchema)
@auth_blp.response(200, TokenSchema)
def refresh(data: dict[str, Any]) -> Any:
    """Rotate a refresh token: the old one stops working, new tokens return."""
    parts = components()
    try:
        issued = sessions.refresh(
            db.session,
            refresh_token=data["refresh_token"],
            signer=parts.signer,
            config=parts.tokens,
        )
    except sessions.RefreshTokenReused:
        # The family's revocation must stick although the request fails.
        db.session.commit()
        raise
    db.session.commit()
    return issued.body(), 200, NO_STORE


@auth_blp.route("/logout", methods=["POST"])
@auth_blp.arguments(RefreshSchema)
@auth_blp.response(204)
def logout(data: dict[str, Any]) -> Any:
    """End the session that the refresh token belongs to."""
    sessions.logout(db.session, refresh_token=data["refresh_token"])
    db.session.commit()
    return Response(status=204)


@auth_blp.route("/token", methods=["POST"])
@auth_blp.response(200, TokenSchema)
def token() -> Any:
    """Client-credentials grant (RFC 6749, section 4.4) for services.

    Takes ``grant_type=client_credentials`` and the client id and secret as
    HTTP Basic credentials or as form or JSON fields, and an optional
    ``audience``.
    """
    fields = _grant_fields()
    if fields.get("grant_type") != "client_credentials":
        raise BadRequest(
            "Only grant_type=client_credentials is supported here; users sign "
            "in at /api/v1/auth/login.",
            error="unsupported_grant_type",
        )
    client_id, client_secret = _client_credentials(fields)
    parts = components()
    issued = sessions.client_credentials(
        db.session,
        client_id=client_id,
        client_secret=client_secret,
        audience=fields.get("audience") or None,
        passwords=parts.passwords,
        signer=parts.signer,
        config=parts.tokens,
    )
    return issued.body(), 200, NO_STORE


def _grant_fields() -> dict[str, str]:
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object.")
        return {key: str(value) for key, value in body.items() if value is not None}
    return {key: value for key, value in request.form.items()}


CLIENT_AUTHORIZATION = "gateway.client_authorization"


TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a URL path, not a secret


def set_aside_basic_credentials() -> None:
    """Hide a token request's Basic credentials from the bearer-token check.

    ``edulink.auth`` rejects any Authorization header that is not a bearer
    token before the view runs. Registered ahead of it, this moves a Basic
    header of the token endpoint, or of nginx's policy check of a request to
    it, to where only :func:`token` reads it.
    """
    checking_token_request = (
        request.endpoint == "policy.check"
        and request.headers.get("X-Original-Path", "").rstrip("/") == TOKEN_PATH
    )
    if request.endpoint != "auth.token" and not checking_token_request:
        return
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("basic "):
        request.environ[CLIENT_AUTHORIZATION] = request.environ.pop(
            "HTTP_AUTHORIZATION"
        )


def _client_credentials(fields: dict[str, str]) -> tuple[str, str]:
    header = request.environ.get(CLIENT_AUTHORIZATION, "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized(
                "The Basic credentials are not valid base64.", error="invalid_client"
            ) from None
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret
    client_id = fields.get("client_id", "")
    client_secret = fields.get("client_secret", "")
    if not client_id or not client_secret:
        raise Unauthorized(
            "Send client_id and client_secret, as Basic credentials or fields.",
            error="invalid_client",
        )
    return client_id, client_secret


# Public keys.


@jwks_blp.get("/.well-known/jwks.json")
def jwks() -> Response:
    """Publish the keys that verify access tokens, current and recently retired."""
    parts = components()
    document = published_jwks(
        db.session,
        keep_retired_for=parts.keep_retired_keys_for,
        extra_file=parts.settings.jwks_extra_file,
    )
    if not document["keys"]:
        # A fresh gateway signs nothing before its first key exists.
        parts.signer.forget()
        with db.transaction() as session:
            ensure_signing_key(session)
        document = published_jwks(
            db.session,
            keep_retired_for=parts.keep_retired_keys_for,
            extra_file=parts.settings.jwks_extra_file,
        )
    response = jsonify(document)
    response.headers["Cache-Control"] = "public, max-age=60"
    return response

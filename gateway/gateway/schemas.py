"""Request and response schemas of the accounts and auth API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from edulink.auth import Role
from gateway.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH

EMAIL_MAX = 254
INVITABLE_ROLES = [
    str(role) for role in Role if role not in {Role.student, Role.service}
]


def _email(**kwargs: object) -> ma.fields.Email:
    return ma.fields.Email(
        required=True,
        validate=validate.Length(max=EMAIL_MAX),
        **kwargs,  # type: ignore[arg-type]
    )


def _password() -> ma.fields.String:
    # The length floor is a business rule, checked with the other rules.
    return ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
    )


def _token() -> ma.fields.String:
    return ma.fields.String(required=True, validate=validate.Length(min=1, max=512))


def _name() -> ma.fields.String:
    return ma.fields.String(required=True, validate=validate.Length(min=1, max=200))


class RegistrationSchema(ma.Schema):
    email = _email()
    password = _password()
    name = _name()


class AccountSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    email = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    role = ma.fields.String(dump_only=True)
    org_ids = ma.fields.List(ma.fields.UUID(), dump_only=True)
    email_verified = ma.fields.Boolean(dump_only=True)
    status = ma.fields.String(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)


class TokenRedemptionSchema(ma.Schema):
    token = _token()


class EmailSchema(ma.Schema):
    email = _email()


class PasswordResetSchema(ma.Schema):
    token = _token()
    password = _password()


class InvitationCreateSchema(ma.Schema):
    email = _email()
    role = ma.fields.String(required=True, validate=validate.OneOf(INVITABLE_ROLES))
    org_ids = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=validate.Length(max=50)
    )


class InvitationSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    email = ma.fields.String(dump_only=True)
    role = ma.fields.String(dump_only=True)
    org_ids = ma.fields.List(ma.fields.UUID(), dump_only=True)
    expires_at = ma.fields.DateTime(dump_only=True)


class InvitationAcceptSchema(ma.Schema):
    token = _token()
    name = _name()
    password = _password()


class LoginSchema(ma.Schema):
    email = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=EMAIL_MAX)
    )
    password = _password()


class RefreshSchema(ma.Schema):
    refresh_token = _token()


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer()
    refresh_token = ma.fields.String()
    refresh_expires_in = ma.fields.Integer()

"""Operator commands: accounts, keys, clients and limits.

Run them as ``flask --app gateway.app:create_app keys rotate`` and so on.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup
from limits.storage import storage_from_string

from edulink.errors import ProblemError
from gateway import keys, services, sessions
from gateway.components import components
from gateway.db import db
from gateway.models import ServiceClient, SigningKey


def _fail(error: ProblemError) -> None:
    raise click.ClickException(error.detail)


def register_cli(app: Flask) -> None:
    app.cli.add_command(accounts_group)
    app.cli.add_command(keys_group)
    app.cli.add_command(clients_group)
    app.cli.add_command(limits_group)


accounts_group = AppGroup("accounts", help="Manage accounts.")


@accounts_group.command(
    "create-admin", help="Create a system admin, such as the very first one."
)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.password_option(
    envvar="GATEWAY_ADMIN_PASSWORD",
    help="Password; prompted for unless GATEWAY_ADMIN_PASSWORD is set.",
)
def create_admin(email: str, name: str, password: str) -> None:
    parts = components()
    try:
        with db.transaction() as session:
            account = services.create_system_admin(
                session,
                email=email,
                name=name,
                password=password,
                passwords=parts.passwords,
            )
            account_id = account.id
    except ProblemError as error:
        _fail(error)
    click.echo(f"created system admin {email} with id {account_id}")


keys_group = AppGroup("keys", help="Manage the keys that sign access tokens.")


@keys_group.command(
    "rotate",
    help="Sign with a new key from now on. The old key stays published until "
    "its tokens have expired.",
)
def rotate_keys() -> None:
    parts = components()
    with db.transaction() as session:
        key = keys.rotate_signing_key(session)
        kid = key.kid
        pruned = keys.prune_keys(session, keep_retired_for=parts.keep_retired_keys_for)
    click.echo(f"new signing key {kid}")
    for old in pruned:
        click.echo(f"deleted expired key {old}")


@keys_group.command("prune", help="Delete retired keys whose tokens have expired.")
def prune_keys() -> None:
    with db.transaction() as session:
        pruned = keys.prune_keys(
            session, keep_retired_for=components().keep_retired_keys_for
        )
    click.echo(f"deleted {len(pruned)} keys")


@keys_group.command("list", help="List keys: kid, created, retired.")
def list_keys() -> None:
    with db.transaction() as session:
        rows = session.execute(
            sa.select(
                SigningKey.kid, SigningKey.created_at, SigningKey.retired_at
            ).order_by(SigningKey.created_at)
        ).all()
    for kid, created_at, retired_at in rows:
        state = f"retired {retired_at:%Y-%m-%d %H:%M}" if retired_at else "signing"
        click.echo(f"{kid}  created {created_at:%Y-%m-%d %H:%M}  {state}")


clients_group = AppGroup("clients", help="Manage service clients (client credentials).")


@clients_group.command("create", help="Register a service and print its secret once.")
@click.argument("client_id")
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="Audience the client may request; repeat for several (default: JWT_AUDIENCE).",
)
def create_client(client_id: str, audiences: tuple[str, ...]) -> None:
    parts = components()
    try:
        with db.transaction() as session:
            secret = sessions.create_service_client(
                session,
                client_id=client_id,
                audiences=audiences or (parts.settings.jwt_audience,),
                passwords=parts.passwords,
            )
    except ProblemError as error:
        _fail(error)
    click.echo(secret)


@clients_group.command("disable", help="Stop issuing tokens to a service client.")
@click.argument("client_id")
def disable_client(client_id: str) -> None:
    with db.transaction() as session:
        updated = session.execute(
            sa.update(ServiceClient)
            .where(ServiceClient.client_id == client_id)
            .values(disabled_at=datetime.now(UTC))
        ).rowcount
    if not updated:
        raise click.ClickException(f"no service client named {client_id}")
    click.echo(f"disabled {client_id}")


limits_group = AppGroup("limits", help="Maintain the rate-limit counters.")


@limits_group.command(
    "cleanup", help="Delete expired counters now (workers also do it every minute)."
)
def cleanup_counters() -> None:
    settings = components().settings
    storage = storage_from_string(settings.counter_storage_uri())
    delete_expired = getattr(storage, "delete_expired", None)
    if delete_expired is None:
        raise click.ClickException("the configured counter store cleans up by itself")
    click.echo(f"deleted {delete_expired()} expired counters")

"""The parts that views and the CLI share, built once per app from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from edulink.auth import TokenVerifier
from gateway.keys import TokenSigner
from gateway.mail import EmailOutbox
from gateway.passwords import Passwords
from gateway.ratelimit.policies import Policy
from gateway.services import AccountConfig
from gateway.sessions import TokenConfig
from gateway.settings import GatewaySettings

EXTENSION = "gateway"


@dataclass(frozen=True)
class Components:
    settings: GatewaySettings
    passwords: Passwords
    outbox: EmailOutbox
    signer: TokenSigner
    verifier: TokenVerifier
    accounts: AccountConfig
    tokens: TokenConfig
    policies: tuple[Policy, ...]

    @property
    def keep_retired_keys_for(self) -> timedelta:
        """How long a retired key stays published: its longest-lived token's life."""
        longest = max(self.tokens.access_ttl, self.tokens.service_ttl)
        return timedelta(seconds=longest + self.settings.token_leeway)


def components() -> Components:
    return current_app.extensions[EXTENSION]

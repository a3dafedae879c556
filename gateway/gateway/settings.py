"""Settings of the gateway app (environment variables, read at start)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from edulink.settings import PlatformSettings


class FailMode(StrEnum):
    """Policy-check behaviour when the rate-limit counter store fails."""

    open = "open"
    closed = "closed"


class EmailDelivery(StrEnum):
    """Delivery route of account emails."""

    jobs = "jobs"
    memory = "memory"


class GatewaySettings(PlatformSettings):
    """Platform settings plus token lifetimes, password hashing and rate limiting.

    The gateway signs the access tokens that every service verifies, so it
    needs no JWKS_URL or JWKS_FILE: it reads its own keys from its schema.
    """

    access_token_ttl: int = Field(
        default=900, ge=60, le=3600, description="Access token lifetime, seconds"
    )
    refresh_token_ttl: int = Field(
        default=14 * 86400,
        ge=3600,
        description="Refresh token lifetime, seconds; each rotation starts anew",
    )
    service_token_ttl: int = Field(
        default=600, ge=60, le=3600, description="Client-credentials token lifetime"
    )
    verification_token_ttl: int = Field(
        default=86400, ge=300, description="Email verification link lifetime, seconds"
    )
    password_reset_token_ttl: int = Field(
        default=3600, ge=300, description="Password reset link lifetime, seconds"
    )
    invitation_ttl: int = Field(
        default=7 * 86400, ge=3600, description="Invitation lifetime, seconds"
    )
    token_leeway: int = Field(
        default=30, ge=0, description="Clock skew allowed when verifying, seconds"
    )
    jwks_extra_file: Path | None = Field(
        default=None,
        description="JWKS file whose public keys are published and trusted beside "
        "the gateway's own, for example the local development key",
    )
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=1024)
    password_hash_parallelism: int = Field(default=4, ge=1)
    app_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the web app, used in the links of account emails",
    )
    email_delivery: EmailDelivery = Field(default=EmailDelivery.jobs)
    ratelimit_storage_uri: str | None = Field(
        default=None,
        description="Counter store: postgresql+edulink://... or memory://. "
        "Default: the gateway's own database",
    )
    ratelimit_strategy: str = Field(default="sliding-window-counter")
    ratelimit_fail_mode: FailMode = Field(default=FailMode.open)
    ratelimit_enabled: bool = Field(default=True)
    ratelimit_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object that replaces limits by policy name, e.g. "
        '{"anonymous": "120/minute"}',
    )
    ratelimit_storage_timeout: float = Field(
        default=2.0, gt=0, description="Seconds to wait for a counter store connection"
    )

    @model_validator(mode="after")
    def _check_jwks_source(self) -> GatewaySettings:
        # Replaces the platform rule: the gateway verifies with its own keys.
        return self

    @field_validator("ratelimit_strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        if value not in {"fixed-window", "sliding-window-counter"}:
            raise ValueError("must be fixed-window or sliding-window-counter")
        return value

    @field_validator("ratelimit_overrides", mode="before")
    @classmethod
    def _parse_overrides(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    def counter_storage_uri(self) -> str:
        """Return the rate-limit storage URI, defaulting to the gateway database."""
        if self.ratelimit_storage_uri:
            return self.ratelimit_storage_uri
        _, _, rest = self.database_url.partition("://")
        return f"postgresql+edulink://{rest}"

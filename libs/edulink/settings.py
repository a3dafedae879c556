"""Typed settings read from environment variables once, at process start.

Each service subclasses :class:`PlatformSettings` and adds its own fields.
A missing or invalid variable stops the process with the variable's name, so a
misconfigured deployment fails at start instead of on the first request.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SettingsT = TypeVar("SettingsT", bound="PlatformSettings")


class PlatformSettings(BaseSettings):
    """Settings every service reads. Variable names are the upper-case field names.

    An empty variable counts as unset, so a deployment file can pass
    ``${NAME:-}`` through for optional settings.
    """

    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, case_sensitive=False, env_ignore_empty=True
    )

    database_url: str = Field(
        description="PostgreSQL URL, for example postgresql://localhost/edulink"
    )
    jwt_issuer: str = Field(description="Expected `iss` claim of access tokens")
    jwt_audience: str = Field(description="Expected `aud` claim of access tokens")
    jwks_url: str | None = Field(default=None, description="URL of the JWKS document")
    jwks_file: Path | None = Field(default=None, description="Path of a JWKS file")
    cursor_secret: SecretStr = Field(
        min_length=16, description="HMAC key that signs pagination cursors"
    )
    log_level: str = Field(default="INFO", description="Python logging level name")
    max_content_length: int = Field(
        default=1_048_576, gt=0, description="Largest accepted request body, in bytes"
    )
    http_connect_timeout: float = Field(default=2.0, gt=0, description="Seconds")
    http_read_timeout: float = Field(default=10.0, gt=0, description="Seconds")
    service_token: SecretStr | None = Field(
        default=None,
        description="Bearer token this service sends to other services",
    )
    db_pool_size: int = Field(default=10, ge=1)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(
            ("postgresql://", "postgresql+psycopg://", "postgres://")
        ):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _check_jwks_source(self) -> PlatformSettings:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("set exactly one of JWKS_URL and JWKS_FILE")
        return self


def load_settings(settings_class: type[SettingsT], **overrides: object) -> SettingsT:
    """Read settings from the environment, or exit naming each bad variable.

    Keyword overrides win over the environment; tests use them.
    """
    try:
        return settings_class(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = "_".join(str(part) for part in problem["loc"]).upper() or "settings"
            lines.append(f"  {name}: {problem['msg']}")
        message = "invalid configuration, fix these environment variables:\n"
        print(message + "\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None

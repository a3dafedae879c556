"""Settings of the notifications service (environment variables, read at start)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from edulink.settings import PlatformSettings


class NotificationsSettings(PlatformSettings):
    """Platform settings plus the Pusher connection, SMTP and email addresses.

    ``REALTIME_BACKEND=memory`` and ``EMAIL_BACKEND=memory`` swap Pusher and
    SMTP for stand-ins that keep events and messages in the process, for
    tests and for running without either server.
    """

    realtime_backend: Literal["pusher", "memory"] = Field(
        default="pusher", description="Where real-time events go"
    )
    pusher_app_id: str | None = Field(default=None, description="Pusher app id")
    pusher_key: str | None = Field(default=None, description="Pusher app key")
    pusher_secret: SecretStr | None = Field(
        default=None, description="Pusher app secret, signs API calls and channels"
    )
    pusher_cluster: str | None = Field(
        default=None, description="Pusher cluster such as eu, for hosted Pusher"
    )
    pusher_host: str | None = Field(
        default=None,
        description="Host of a self-hosted Pusher-compatible server; wins over "
        "PUSHER_CLUSTER",
    )
    pusher_port: int | None = Field(default=None, ge=1, le=65535)
    pusher_ssl: bool = Field(default=True, description="Call the Pusher API by HTTPS")
    pusher_timeout: float = Field(
        default=5.0, gt=0, description="Seconds one Pusher API call may take"
    )

    email_backend: Literal["smtp", "memory"] = Field(
        default="smtp", description="Where emails go"
    )
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server host")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="none",
        description="none, starttls (upgrade a plain connection) or tls (implicit)",
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=10.0, gt=0, description="Seconds")
    email_from: str = Field(
        default="Edulink <no-reply@edulink.example>",
        description="From header of every email",
    )
    app_url: str | None = Field(
        default=None,
        description="Base URL of the web app, for links in emails",
    )

    @model_validator(mode="after")
    def _check_pusher(self) -> NotificationsSettings:
        if self.realtime_backend != "pusher":
            return self
        missing = [
            name
            for name in ("pusher_app_id", "pusher_key", "pusher_secret")
            if getattr(self, name) is None
        ]
        if self.pusher_host is None and self.pusher_cluster is None:
            missing.append("pusher_host or pusher_cluster")
        if missing:
            names = ", ".join(name.upper() for name in missing)
            raise ValueError(
                f"REALTIME_BACKEND=pusher needs {names}; set them, or set "
                "REALTIME_BACKEND=memory"
            )
        return self

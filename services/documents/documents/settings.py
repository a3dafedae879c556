"""Settings of the documents service (environment variables, read at start)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from edulink.settings import PlatformSettings

# Debian's fonts-dejavu-core installs its TrueType files here.
DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class DocumentsSettings(PlatformSettings):
    """Platform settings plus the services it reads, its public URL, render bounds."""

    students_url: str = Field(
        description="Base URL of the students service, e.g. http://127.0.0.1:8001"
    )
    internships_url: str = Field(
        description="Base URL of the internships service, e.g. http://127.0.0.1:8002"
    )
    public_base_url: str = Field(
        description="Public web address that verification links and QR codes use, "
        "e.g. https://edulink.example; documents print PUBLIC_BASE_URL/verify/<code>"
    )
    font_dir: Path = Field(
        default=DEFAULT_FONT_DIR,
        description="Folder with DejaVuSans.ttf, DejaVuSans-Bold.ttf and "
        "DejaVuSerif-Bold.ttf (Debian package fonts-dejavu-core)",
    )
    render_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds one render may take"
    )
    render_memory_mb: int = Field(
        default=512,
        ge=16,
        le=16_384,
        description="Address space one render may add to its process, in MiB",
    )
    max_report_placements: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most placements one institution report may list",
    )

    @field_validator("public_base_url", "students_url", "internships_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

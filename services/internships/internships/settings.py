"""Settings of the internships service (environment variables, read at start)."""

from pydantic import Field

from edulink.settings import PlatformSettings


class InternshipsSettings(PlatformSettings):
    """Platform settings plus where the students service is and search caching."""

    students_url: str = Field(
        description="Base URL of the students service, e.g. http://127.0.0.1:8001"
    )
    search_max_age: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Seconds that clients and the gateway may cache a search page",
    )

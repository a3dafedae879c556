"""Settings of the students service (environment variables, read at start)."""

from edulink.settings import PlatformSettings


class StudentsSettings(PlatformSettings):
    """Platform settings; the students service adds none of its own yet."""

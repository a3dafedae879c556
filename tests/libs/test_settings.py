"""Platform settings: read from the environment, exit naming each bad variable."""

from __future__ import annotations

import pytest

from edulink.settings import PlatformSettings, load_settings

VARIABLES = (
    "DATABASE_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWKS_URL",
    "JWKS_FILE",
    "CURSOR_SECRET",
    "LOG_LEVEL",
    "MAX_CONTENT_LENGTH",
    "HTTP_CONNECT_TIMEOUT",
    "HTTP_READ_TIMEOUT",
    "SERVICE_TOKEN",
    "DB_POOL_SIZE",
)
VALID = {
    "DATABASE_URL": "postgresql://root@127.0.0.1:5432/edulink",
    "JWT_ISSUER": "https://identity.edulink.test",
    "JWT_AUDIENCE": "edulink",
    "JWKS_FILE": "/run/secrets/jwks.json",
    "CURSOR_SECRET": "cursor-secret-0123456789",
}


@pytest.fixture
def environ(monkeypatch):
    """A clean environment with a valid configuration; tests change it."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in VALID.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def _exit_message(capsys, **overrides) -> str:
    with pytest.raises(SystemExit) as caught:
        load_settings(PlatformSettings, **overrides)
    assert caught.value.code == 2
    return capsys.readouterr().err


def test_valid_environment_loads(environ):
    settings = load_settings(PlatformSettings)

    assert settings.database_url == VALID["DATABASE_URL"]
    assert str(settings.jwks_file) == VALID["JWKS_FILE"]
    assert settings.cursor_secret.get_secret_value() == VALID["CURSOR_SECRET"]


def test_defaults_apply(environ):
    settings = load_settings(PlatformSettings)

    assert settings.log_level == "INFO"
    assert settings.max_content_length == 1_048_576
    assert settings.db_pool_size == 10
    assert settings.service_token is None


def test_overrides_win_over_environment(environ):
    settings = load_settings(PlatformSettings, jwt_audience="other")

    assert settings.jwt_audience == "other"


def test_lower_case_log_level_is_accepted(environ):
    environ.setenv("LOG_LEVEL", "debug")

    assert load_settings(PlatformSettings).log_level == "DEBUG"


def test_settings_are_frozen(environ):
    settings = load_settings(PlatformSettings)

    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"


def test_secret_is_masked_in_repr(environ):
    settings = load_settings(PlatformSettings)

    assert VALID["CURSOR_SECRET"] not in repr(settings)


# Exits


def test_missing_database_url_exits(environ, capsys):
    environ.delenv("DATABASE_URL")

    message = _exit_message(capsys)

    assert "DATABASE_URL" in message
    assert "JWT_ISSUER" not in message


def test_bad_database_url_exits(environ, capsys):
    environ.setenv("DATABASE_URL", "mysql://root@127.0.0.1/edulink")

    message = _exit_message(capsys)

    assert "DATABASE_URL" in message
    assert "postgresql://" in message


def test_both_jwks_sources_exit(environ, capsys):
    environ.setenv("JWKS_URL", "http://127.0.0.1:8000/.well-known/jwks.json")

    message = _exit_message(capsys)

    assert "JWKS_URL" in message
    assert "JWKS_FILE" in message


def test_no_jwks_source_exits(environ, capsys):
    environ.delenv("JWKS_FILE")

    message = _exit_message(capsys)

    assert "JWKS_URL" in message
    assert "JWKS_FILE" in message


@pytest.mark.parametrize("level", ["LOUD", "20"])
def test_bad_log_level_exits(environ, capsys, level):
    environ.setenv("LOG_LEVEL", level)

    message = _exit_message(capsys)

    assert "LOG_LEVEL" in message


def test_short_cursor_secret_exits_without_echo(environ, capsys):
    environ.setenv("CURSOR_SECRET", "short-s3cret")

    message = _exit_message(capsys)

    assert "CURSOR_SECRET" in message
    assert "short-s3cret" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_CONTENT_LENGTH", "0"),
        ("MAX_CONTENT_LENGTH", "a lot"),
        ("HTTP_CONNECT_TIMEOUT", "-1"),
        ("HTTP_READ_TIMEOUT", "0"),
        ("DB_POOL_SIZE", "0"),
    ],
)
def test_bad_number_exits(environ, capsys, name, value):
    environ.setenv(name, value)

    message = _exit_message(capsys)

    assert name in message


def test_every_problem_is_listed(environ, capsys):
    for name in ("DATABASE_URL", "JWT_ISSUER", "JWT_AUDIENCE"):
        environ.delenv(name)
    environ.setenv("LOG_LEVEL", "LOUD")

    message = _exit_message(capsys)

    for name in ("DATABASE_URL", "JWT_ISSUER", "JWT_AUDIENCE", "LOG_LEVEL"):
        assert name in message


def test_exit_message_says_what_to_fix(environ, capsys):
    environ.delenv("DATABASE_URL")

    message = _exit_message(capsys)

    assert message.startswith("invalid configuration")


def test_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("LOG_LEVEL", "")
    monkeypatch.setenv("DB_POOL_SIZE", "")

    settings = load_settings(
        PlatformSettings,
        database_url="postgresql://localhost/edulink",
        jwt_issuer="issuer",
        jwt_audience="edulink",
        jwks_file="jwks.json",
        cursor_secret="0123456789abcdef",
    )

    assert settings.log_level == "INFO"
    assert settings.db_pool_size == 10

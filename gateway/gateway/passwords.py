"""Password hashing with Argon2id (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
# Hashing cost grows with length; the cap keeps one request from costing much.
MAX_LENGTH = 256


class Passwords:
    """Hash and check passwords with the cost parameters from settings."""

    def __init__(
        self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Checked when the email matches no account, so that the response
        # takes as long as for a wrong password and reveals nothing.
        self._decoy = self._hasher.hash("decoy password for unknown accounts")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def check(self, password_hash: str | None, password: str) -> bool:
        """Return whether ``password`` matches; a None hash checks a decoy."""
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Tell whether the hash was made with other cost parameters than now."""
        return self._hasher.check_needs_rehash(password_hash)

"""Retry policy of a job: how many times to run it again and how long to wait."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Exponential backoff, used when a policy gives no explicit interval: the n-th
# retry waits about BASE * 2**(n-1) seconds, capped at CAP.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0


@dataclass(frozen=True)
class Retry:
    """Retry a failed job up to ``max`` times, as in RQ.

    ``interval`` is the wait in seconds before each retry: one number for every
    retry, or a list whose n-th item is the wait before the n-th retry (the
    last item repeats). Explicit intervals are used as given. Without one the
    wait grows exponentially from 1 s up to 300 s, with jitter so that jobs
    that failed together do not retry together.
    """

    max: int
    interval: float | Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.max < 0:
            raise ValueError(f"Retry max must be 0 or more, got {self.max}")
        intervals = self._intervals()
        if intervals is not None and (
            not intervals or any(seconds < 0 for seconds in intervals)
        ):
            raise ValueError(
                f"Retry interval must be seconds >= 0 or a non-empty list of them, "
                f"got {self.interval!r}"
            )

    def _intervals(self) -> list[float] | None:
        if self.interval is None:
            return None
        if isinstance(self.interval, int | float):
            return [float(self.interval)]
        return [float(seconds) for seconds in self.interval]

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait before retry number ``retry_number`` (1-based)."""
        intervals = self._intervals()
        if intervals is not None:
            return intervals[min(retry_number, len(intervals)) - 1]
        return backoff_delay(retry_number, rng or random)

    def to_json(self) -> dict[str, Any]:
        intervals = self._intervals()
        return {"max": self.max, "interval": intervals}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Retry:
        return cls(max=int(data["max"]), interval=data.get("interval"))


def backoff_delay(retry_number: int, rng: random.Random | Any = random) -> float:
    """Return an exponential delay with "equal jitter": half fixed, half random.

    The fixed half keeps retries from bunching at zero, and the random half
    spreads jobs that failed at the same moment.
    """
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (retry_number - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)

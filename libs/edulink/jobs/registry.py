"""A service's job handlers and cron schedules, and the context a handler runs in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from croniter import croniter
from sqlalchemy.orm import Session

from edulink.jobs.contracts import JobContract, check_queue_name
from edulink.jobs.errors import UnknownJobType
from edulink.jobs.queue import entrypoint_of


@dataclass(frozen=True)
class JobContext:
    """Metadata and database session of the job a handler runs.

    ``session`` is in the transaction that also marks the job finished. Write
    through it and do not commit: the worker commits when the handler returns,
    and rolls back when it raises.
    """

    id: str
    name: str
    queue: str
    attempt: int
    request_id: str | None
    actor: str | None
    session: Session


Handler = Callable[[Any, JobContext], None]
HandlerT = TypeVar("HandlerT", bound=Handler)

_current_job: ContextVar[JobContext | None] = ContextVar(
    "edulink_current_job", default=None
)


def get_current_job() -> JobContext | None:
    """Return the context of this thread's running job, as RQ's ``get_current_job``."""
    return _current_job.get()


@dataclass(frozen=True)
class Registration:
    contract: JobContract
    handler: Handler
    concurrency_limit: int = 0


@dataclass(frozen=True)
class ScheduledJob:
    """Enqueue ``contract`` with ``payload`` at every tick of cron ``expression``."""

    expression: str
    contract: JobContract
    payload: dict[str, Any] = field(default_factory=dict)


class JobRegistry:
    """The handlers of one service's worker, on the queue named after the service."""

    def __init__(self, queue: str) -> None:
        self.queue = check_queue_name(queue)
        self._registrations: dict[str, Registration] = {}
        self.schedules: list[ScheduledJob] = []

    def handler(
        self, contract: JobContract, *, concurrency_limit: int = 0
    ) -> Callable[[HandlerT], HandlerT]:
        """Register the decorated function as the handler of ``contract``.

        The function is called as ``handler(payload, context)`` with the
        validated payload model and a :class:`JobContext`. A positive
        ``concurrency_limit`` caps how many of these jobs run at once across
        all workers of the queue.
        """

        def decorate(func: HandlerT) -> HandlerT:
            self.register(contract, func, concurrency_limit=concurrency_limit)
            func.__job_contract__ = contract  # type: ignore[attr-defined]
            return func

        return decorate

    def register(
        self, contract: JobContract, handler: Handler, *, concurrency_limit: int = 0
    ) -> None:
        if contract.consumer not in (None, self.queue):
            raise ValueError(
                f"job {contract.name} is consumed by the {contract.consumer!r} queue; "
                f"this registry serves {self.queue!r}"
            )
        entrypoint = entrypoint_of(self.queue, contract.name)
        if entrypoint in self._registrations:
            raise ValueError(f"job {contract.name} has a handler already")
        self._registrations[entrypoint] = Registration(
            contract, handler, concurrency_limit
        )

    def schedule(self, expression: str, contract: JobContract, **payload: Any) -> None:
        """Enqueue ``contract`` at every tick of cron ``expression`` (UTC).

        Five fields as in crontab, or six with seconds last. The payload is
        validated now, raising InvalidPayload. Each tick becomes
        one job whatever the number of workers, with the id
        ``cron:<queue>:<name>:<tick>``.
        """
        if not croniter.is_valid(expression):
            raise ValueError(f"invalid cron expression {expression!r}")
        if self.entrypoint(contract) not in self._registrations:
            raise ValueError(
                f"register a handler for {contract.name} before scheduling it"
            )
        contract.build((), payload)
        self.schedules.append(ScheduledJob(expression, contract, payload))

    def entrypoint(self, contract: JobContract) -> str:
        return entrypoint_of(self.queue, contract.name)

    def lookup(self, entrypoint: str) -> Registration:
        try:
            return self._registrations[entrypoint]
        except KeyError:
            raise UnknownJobType(
                f"no handler for {entrypoint} in this worker"
            ) from None

    def __iter__(self) -> Iterator[tuple[str, Registration]]:
        return iter(self._registrations.items())

    def __len__(self) -> int:
        return len(self._registrations)


def bind_current_job(context: JobContext) -> Any:
    return _current_job.set(context)


def unbind_current_job(token: Any) -> None:
    _current_job.reset(token)

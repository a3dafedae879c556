"""Job contracts: the name, payload schema and consumer of each job type.

A contract is validated twice: by the producer when it enqueues, and by the
consumer's worker when it receives the job, because the two may run different
releases of the code. Payloads carry their schema version. A worker turns an
older version into the current one with the contract's ``upgrades``. Any
other version, or a payload that fails the schema, fails the job permanently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from edulink.jobs.errors import InvalidPayload, UnknownJobType
from edulink.jobs.retry import Retry

JOB_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Options of RQ's enqueue that edulink.jobs does not implement. enqueue()
# rejects them by name unless the payload has a field of that name.
UNSUPPORTED_RQ_OPTIONS = frozenset(
    {
        "job_timeout",
        "timeout",
        "result_ttl",
        "ttl",
        "failure_ttl",
        "depends_on",
        "meta",
        "description",
        "on_success",
        "on_failure",
        "on_stopped",
        "pipeline",
    }
)

PayloadUpgrade = Callable[[dict[str, Any]], dict[str, Any]]

_catalog: dict[str, JobContract] = {}


def check_queue_name(name: str) -> str:
    if not QUEUE_NAME.match(name):
        raise ValueError(
            f"invalid queue name {name!r}: use lower-case letters, digits and "
            "underscores, starting with a letter (the consuming service's name)"
        )
    return name


# Compared and hashed by identity: each contract object is one job type.
@dataclass(frozen=True, eq=False)
class JobContract:
    """One job type.

    ``name`` is dotted (``notifications.send_email``). ``payload`` is a pydantic
    model, best with ``extra="forbid"``. ``consumer`` is the queue, named after
    the service whose worker runs the job; None means any queue whose registry
    has a handler for it (used by platform jobs such as ``ledger.append``).
    ``upgrades[n]`` turns a version-n payload into a version n+1 one.

    With ``run_once`` (the default) the worker marks the job finished in the
    handler's transaction, so a job run again after a crash skips its handler.
    Turn it off only for a handler that is idempotent by itself: its job then
    costs no statement beyond the handler's own.
    """

    name: str
    version: int
    payload: type[pydantic.BaseModel]
    consumer: str | None
    retry: Retry = field(default_factory=lambda: Retry(max=3))
    upgrades: Mapping[int, PayloadUpgrade] = field(default_factory=dict)
    run_once: bool = True

    def __post_init__(self) -> None:
        if not JOB_NAME.match(self.name):
            raise ValueError(
                f"invalid job name {self.name!r}: use dotted lower-case words, "
                "e.g. notifications.send_email"
            )
        if self.version < 1:
            raise ValueError(f"job {self.name}: version must be 1 or more")
        if self.consumer is not None:
            check_queue_name(self.consumer)
        _catalog[self.name] = self

    def build(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> pydantic.BaseModel:
        """Validate enqueue arguments into a payload; positional ones bind to fields."""
        if len(args) == 1 and not kwargs and isinstance(args[0], self.payload):
            return args[0]
        fields = list(self.payload.model_fields)
        if len(args) > len(fields):
            raise TypeError(
                f"{self.name} takes at most {len(fields)} positional arguments "
                f"({', '.join(fields)}), got {len(args)}"
            )
        data = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key in data:
                raise TypeError(f"{self.name} got two values for argument {key!r}")
            data[key] = value
        return self._validate(data, self.version)

    def load(self, version: int, data: Any) -> pydantic.BaseModel:
        """Validate a received payload of ``version``, upgraded to the current one."""
        if not isinstance(version, int) or not 1 <= version <= self.version:
            raise InvalidPayload(
                f"{self.name}: payload version {version!r} is unknown to this worker, "
                f"which handles versions up to {self.version}"
            )
        while version < self.version:
            upgrade = self.upgrades.get(version)
            if upgrade is None:
                raise InvalidPayload(
                    f"{self.name}: no upgrade from payload version {version} to "
                    f"{version + 1}"
                )
            if not isinstance(data, dict):
                raise InvalidPayload(f"{self.name}: payload is not a JSON object")
            data = upgrade(dict(data))
            version += 1
        return self._validate(data, version)

    def _validate(self, data: Any, version: int) -> pydantic.BaseModel:
        return validate_payload(self.payload, data, f"{self.name} v{version}")


@dataclass(frozen=True, eq=False)
class DomainEvent:
    """A business event that fans out to one job per subscriber.

    Every subscriber contract must accept the event's payload: usually the
    same model, or one with ``extra="ignore"`` that reads a subset of it.
    """

    name: str
    payload: type[pydantic.BaseModel]
    subscribers: tuple[JobContract, ...]

    def __post_init__(self) -> None:
        if not JOB_NAME.match(self.name):
            raise ValueError(f"invalid event name {self.name!r}")
        for contract in self.subscribers:
            if contract.consumer is None:
                raise ValueError(
                    f"event {self.name}: subscriber {contract.name} names no consumer "
                    "queue"
                )

    def build(
        self, payload: pydantic.BaseModel | Mapping[str, Any]
    ) -> pydantic.BaseModel:
        """Validate an event payload; an instance of the event's model passes as is."""
        if isinstance(payload, self.payload):
            return payload
        return validate_payload(self.payload, payload, f"event {self.name}")


def validate_payload(
    model: type[pydantic.BaseModel], data: Any, label: str
) -> pydantic.BaseModel:
    """Validate ``data`` with ``model``; InvalidPayload lists each problem."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: "
            f"{problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidPayload(f"{label} payload is invalid: {problems}") from None


def get_contract(name: str) -> JobContract:
    """Return the contract registered under ``name``, or raise UnknownJobType."""
    try:
        return _catalog[name]
    except KeyError:
        raise UnknownJobType(
            f"no job contract named {name!r}; import the module that defines it"
        ) from None


def resolve(job: JobContract | str | Callable[..., Any]) -> JobContract:
    """Find the contract of a contract, a job name, or a registered handler."""
    if isinstance(job, JobContract):
        return job
    if isinstance(job, str):
        return get_contract(job)
    contract = getattr(job, "__job_contract__", None)
    if isinstance(contract, JobContract):
        return contract
    raise UnknownJobType(
        f"{job!r} is not a job: pass a JobContract, a job name, or a function "
        "registered with JobRegistry.handler"
    )

"""Background jobs on PostgreSQL: pgqueuer underneath, RQ's interface on top.

Producers enqueue in their own transaction with :class:`Queue` or
:func:`publish`; each service runs a :class:`Worker` over its
:class:`JobRegistry`. docs/jobs.md maps every RQ feature onto pgqueuer.
"""

from edulink.jobs.contracts import DomainEvent, JobContract, get_contract
from edulink.jobs.errors import (
    InvalidJobOperation,
    InvalidPayload,
    JobError,
    NoSuchJobError,
    PermanentJobError,
    UnknownJobType,
)
from edulink.jobs.job import FailedJobRegistry, Job, JobStatus
from edulink.jobs.queue import Queue, publish
from edulink.jobs.registry import JobContext, JobRegistry, get_current_job
from edulink.jobs.retry import Retry
from edulink.jobs.worker import Worker, WorkerOptions

__all__ = [
    "DomainEvent",
    "FailedJobRegistry",
    "InvalidJobOperation",
    "InvalidPayload",
    "Job",
    "JobContext",
    "JobContract",
    "JobError",
    "JobRegistry",
    "JobStatus",
    "NoSuchJobError",
    "PermanentJobError",
    "Queue",
    "Retry",
    "UnknownJobType",
    "Worker",
    "WorkerOptions",
    "get_contract",
    "get_current_job",
    "publish",
]

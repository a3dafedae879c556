"""Exceptions of the job system. Names follow RQ where RQ has one."""

from __future__ import annotations


class JobError(Exception):
    """Base class of every exception raised by :mod:`edulink.jobs`."""


class NoSuchJobError(JobError, LookupError):
    """No job has the requested id."""


class InvalidJobOperation(JobError):
    """The job's status does not allow the operation, e.g. cancel a running job."""


class UnknownJobType(JobError, LookupError):
    """No contract is registered under the requested job name."""


class InvalidPayload(JobError, ValueError):
    """A payload failed its contract's schema, or carries an unknown version."""


class PermanentJobError(JobError):
    """Raised by a handler to fail its job at once, without the remaining retries.

    Use it when running again cannot help: the referenced row is gone, or the
    input breaks a rule that will not change.
    """

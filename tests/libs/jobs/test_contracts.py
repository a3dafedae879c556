"""Contracts, payload versions and retry delays, without a database."""

from __future__ import annotations

import random

import pydantic
import pytest

from edulink.jobs import InvalidPayload, JobContract, JobRegistry, Retry, get_contract
from edulink.jobs.contracts import resolve
from edulink.jobs.retry import BACKOFF_CAP_SECONDS


class Note(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    text: str
    urgent: bool = False


NOTE_V1 = JobContract("contract_tests.note", 1, Note, consumer="notes")


class NoteV3(pydantic.BaseModel):
    body: str
    urgent: bool
    channel: str


NOTE_V3 = JobContract(
    "contract_tests.note_v3",
    3,
    NoteV3,
    consumer="notes",
    upgrades={
        1: lambda data: {"body": data["text"], "urgent": data.get("urgent", False)},
        2: lambda data: {**data, "channel": "email"},
    },
)


def test_positional_arguments_bind_to_fields() -> None:
    assert NOTE_V1.build(("hi", True), {}) == Note(text="hi", urgent=True)


def test_duplicate_argument_rejected() -> None:
    with pytest.raises(TypeError, match="two values"):
        NOTE_V1.build(("hi",), {"text": "again"})


def test_old_version_upgraded_in_steps() -> None:
    payload = NOTE_V3.load(1, {"text": "hi"})
    assert payload == NoteV3(body="hi", urgent=False, channel="email")


@pytest.mark.parametrize("version", [0, 4, "1"])
def test_unknown_version_invalid(version: object) -> None:
    with pytest.raises(InvalidPayload, match="version"):
        NOTE_V3.load(version, {"body": "hi"})  # type: ignore[arg-type]


def test_non_object_payload_invalid() -> None:
    with pytest.raises(InvalidPayload):
        NOTE_V1.load(1, ["not", "an", "object"])


@pytest.mark.parametrize("name", ["nodots", "Upper.case", "trailing.", "a..b"])
def test_bad_job_names_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid job name"):
        JobContract(name, 1, Note, consumer=None)


def test_contract_found_by_name_and_handler() -> None:
    registry = JobRegistry("notes")

    @registry.handler(NOTE_V1)
    def handle(payload: Note, context: object) -> None:
        pass

    assert get_contract("contract_tests.note") is NOTE_V1
    assert resolve(handle) is NOTE_V1


def test_registry_rejects_other_consumer() -> None:
    with pytest.raises(ValueError, match="consumed by"):
        JobRegistry("students").register(NOTE_V1, lambda payload, context: None)


def test_schedule_validates_cron_and_payload() -> None:
    registry = JobRegistry("notes")
    registry.register(NOTE_V1, lambda payload, context: None)
    with pytest.raises(ValueError, match="cron"):
        registry.schedule("every day", NOTE_V1, text="x")
    with pytest.raises(InvalidPayload):
        registry.schedule("0 3 * * *", NOTE_V1)


def test_explicit_intervals_used_as_given() -> None:
    retry = Retry(max=4, interval=[5, 30])
    assert [retry.delay(n) for n in (1, 2, 3)] == [5.0, 30.0, 30.0]


def test_backoff_grows_with_jitter() -> None:
    retry = Retry(max=10)
    rng = random.Random(7)
    for number in range(1, 11):
        ceiling = min(BACKOFF_CAP_SECONDS, 2 ** (number - 1))
        delay = retry.delay(number, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_backoff_spreads_equal_failures() -> None:
    rng = random.Random(1)
    delays = {Retry(max=5).delay(4, rng) for _ in range(20)}
    assert len(delays) == 20


def test_negative_retry_settings_rejected() -> None:
    with pytest.raises(ValueError, match="max"):
        Retry(max=-1)
    with pytest.raises(ValueError, match="interval"):
        Retry(max=1, interval=[-1])

"""Producers' and the consumer's payload schemas of each notification job agree.

Every service keeps its own copy of a job's payload model, because services
never import each other. These tests import them all and compare their JSON
schemas field by field, so that whatever a producer's model validates the
notifications worker validates too. They reject a field the consumer lacks,
a field the consumer requires that the producer does not send, a type the
consumer rejects, and a stricter length or pattern (except the gaps listed
below).
"""

from __future__ import annotations

import importlib
import re
import uuid
from pathlib import Path
from typing import Any

import pydantic
import pytest

from edulink.jobs import JobContract
from notifications import contracts as consumer
from notifications.mail import EmailRenderer

# (module, attribute) of each producer contract; a module missing from this
# checkout is skipped.
PRODUCERS = [
    ("internships.jobs", "NOTIFY"),
    ("students.jobs", "NOTIFY"),
    ("documents.contracts", "NOTIFY"),
    ("gateway.mail", "SEND_EMAIL"),
]
CONSUMERS = {
    contract.name: contract
    for contract in (consumer.NOTIFY, consumer.SEND_EMAIL, consumer.PUSH_EVENT)
}

# Constraints the consumer has and a producer's model does not, accepted
# because the producer builds the value from bounded or constant parts.
# Entries are (producer module, field, constraint).
ACCEPTED_GAPS = {
    # Kinds and entity types are string constants in the producers' code.
    *(
        (module, field, "pattern")
        for module, _ in PRODUCERS
        for field in ("kind", "entity_type", "template")
    ),
    # Titles are fixed sentences.
    ("internships.jobs", "title", "maxLength"),
    ("internships.jobs", "title", "minLength"),
    # Bodies join a fixed sentence with fields the producers' APIs cap at
    # 2,000 characters (reasons), well under the consumer's 10,000.
    ("internships.jobs", "body", "maxLength"),
    ("students.jobs", "body", "maxLength"),
    # Addresses come from validated accounts and profiles.
    ("students.jobs", "recipient_email", "pattern"),
    ("gateway.mail", "to", "pattern"),
    ("gateway.mail", "to", "maxLength"),
    # Refresh keys are constant lists of a few short strings.
    ("students.jobs", "refresh", "maxItems"),
}


def load_producers() -> list[tuple[str, JobContract]]:
    found = []
    for module_name, attribute in PRODUCERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        found.append((module_name, getattr(module, attribute)))
    return found


def producer_ids() -> list[str]:
    return [f"{module}.{contract.name}" for module, contract in load_producers()]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    reference = node.get("$ref")
    if reference:
        name = reference.rsplit("/", 1)[-1]
        return schema["$defs"][name]
    return node


def variants(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a field: the anyOf items, or the node itself."""
    node = resolve(schema, node)
    if "anyOf" in node:
        return [resolve(schema, item) for item in node["anyOf"]]
    return [node]


def type_of(node: dict[str, Any]) -> str:
    return f"{node.get('type', 'any')}:{node.get('format', '')}"


CONSTRAINTS = ("maxLength", "minLength", "pattern", "maxItems", "minItems")


def field_problems(
    module: str,
    name: str,
    produced: dict[str, Any],
    consumed: dict[str, Any],
    schemas: tuple[dict[str, Any], dict[str, Any]],
) -> list[str]:
    producer_schema, consumer_schema = schemas
    problems = []
    accepted = {type_of(v): v for v in variants(consumer_schema, consumed)}
    for variant in variants(producer_schema, produced):
        kind = type_of(variant)
        target = accepted.get(kind) or accepted.get(f"{variant.get('type')}:")
        if target is None:
            problems.append(f"{name}: the consumer does not accept {kind}")
            continue
        for constraint in CONSTRAINTS:
            if constraint not in target:
                continue
            if (module, name, constraint) in ACCEPTED_GAPS:
                continue
            if not _at_least_as_strict(
                constraint, variant.get(constraint), target[constraint]
            ):
                problems.append(
                    f"{name}: the consumer's {constraint} {target[constraint]!r} is "
                    f"stricter than the producer's {variant.get(constraint)!r}"
                )
    return problems


def _at_least_as_strict(constraint: str, produced: Any, consumed: Any) -> bool:
    if produced is None:
        return False
    if constraint in ("maxLength", "maxItems"):
        return produced <= consumed
    if constraint in ("minLength", "minItems"):
        return produced >= consumed
    return produced == consumed


@pytest.mark.parametrize(("module", "producer"), load_producers(), ids=producer_ids())
def test_producer_matches_consumer(module: str, producer: JobContract) -> None:
    contract = CONSUMERS.get(producer.name)
    assert contract is not None, f"no consumer for {producer.name}"
    assert producer.consumer == contract.consumer
    assert producer.version == contract.version

    produced = producer.payload.model_json_schema()
    consumed = contract.payload.model_json_schema()
    producer_fields = produced["properties"]
    consumer_fields = consumed["properties"]
    missing = sorted(set(producer_fields) - set(consumer_fields))
    assert missing == [], f"fields the consumer rejects: {missing}"
    unsent = sorted(set(consumed.get("required", [])) - set(producer_fields))
    assert unsent == [], f"required by the consumer, never sent: {unsent}"

    problems = []
    for name, field in producer_fields.items():
        problems += field_problems(
            module, name, field, consumer_fields[name], (produced, consumed)
        )
    assert problems == []


def sample_payloads() -> list[tuple[str, pydantic.BaseModel]]:
    """Payloads built from sample values with the producers' own models."""
    samples = []
    for module, producer in load_producers():
        fields = producer.payload.model_fields
        data: dict[str, Any] = {}
        for name in fields:
            data[name] = SAMPLE_VALUES.get(name)
        data = {k: v for k, v in data.items() if v is not None}
        if "recipient_org_id" in fields:
            data.pop("recipient_org_id", None)
        samples.append((module, producer.payload.model_validate(data)))
    return samples


SAMPLE_VALUES: dict[str, Any] = {
    "recipient_user_id": uuid.uuid4(),
    "recipient_email": "amina@kilima.example",
    "recipient_name": "Amina Njoroge",
    "kind": "application_status_changed",
    "title": "Your application is shortlisted",
    "body": "Your application to 'Data intern' is now SHORTLISTED. " + "r" * 2000,
    "entity_type": "application",
    "entity_id": uuid.uuid4(),
    "refresh": [["applications", "x"], ["notifications"]],
    "to": "amina@kilima.example",
    "template": "verify_email",
    "context": {"name": "Amina", "token": "t", "link": "https://app/verify?t"},
}


@pytest.mark.parametrize(("module", "payload"), sample_payloads(), ids=producer_ids())
def test_sample_payload_is_accepted(module: str, payload: pydantic.BaseModel) -> None:
    name = next(c.name for m, c in load_producers() if m == module)
    CONSUMERS[name].load(CONSUMERS[name].version, payload.model_dump(mode="json"))


def gateway_templates() -> list[str]:
    try:
        services = importlib.import_module("gateway.services")
    except ModuleNotFoundError:
        return []
    source = Path(services.__file__).read_text(encoding="utf-8")
    return sorted(set(re.findall(r'template="([a-z_]+)"', source)))


@pytest.mark.parametrize("template", gateway_templates())
def test_gateway_templates_exist(template: str) -> None:
    # The gateway sends name, token and link, or role, token and link.
    context = {"name": "Amina", "token": "t", "link": "https://x", "role": "student"}
    rendered = EmailRenderer().render(template, context)
    assert "https://x" in rendered.text


class LooseTitle(pydantic.BaseModel):
    recipient_user_id: uuid.UUID
    title: str
    priority: int


def test_checker_reports_mismatches() -> None:
    produced = LooseTitle.model_json_schema()
    consumed = consumer.Notify.model_json_schema()
    fields = produced["properties"]

    title = field_problems(
        "a.producer",
        "title",
        fields["title"],
        consumed["properties"]["title"],
        (produced, consumed),
    )
    assert any("maxLength" in problem for problem in title)
    assert "priority" not in consumed["properties"]

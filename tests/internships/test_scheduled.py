"""Scheduled jobs: closing opportunities past their deadline, deadline reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edulink.jobs import Queue, Worker
from internships import jobs
from internships.db import db
from tests.internships.helpers import (
    create_opportunity,
    job_names,
    jobs_of,
    open_opportunity,
    set_deadline,
)


def run_job(app, contract) -> None:
    """Enqueue ``contract`` and run the service's worker until the queue is empty."""
    with db.transaction() as session:
        Queue(jobs.QUEUE, session=session).enqueue(contract)
    Worker.for_app(app, jobs.registry).run(burst=True)


def opportunity_status(client, actor, opportunity_id: str) -> str:
    response = client.get(
        f"/api/v1/opportunities/{opportunity_id}", headers=actor.headers
    )
    return response.get_json()["status"]


def test_schedules_cover_close_and_reminders():
    scheduled = {schedule.contract.name for schedule in jobs.registry.schedules}

    assert jobs.CLOSE_EXPIRED.name in scheduled
    assert jobs.REMIND_DEADLINES.name in scheduled


def test_close_job_closes_expired_opportunity(internships_app, client, world):
    set_deadline(world.opportunity["id"], datetime.now(UTC) - timedelta(minutes=1))

    run_job(internships_app, jobs.CLOSE_EXPIRED)

    status = opportunity_status(client, world.employer_admin, world.opportunity["id"])
    assert status == "CLOSED"


def test_close_keeps_future_and_drafts(internships_app, client, world):
    draft = create_opportunity(client, world.employer_admin, world.employer_id)
    set_deadline(draft["id"], datetime.now(UTC) - timedelta(minutes=1))

    run_job(internships_app, jobs.CLOSE_EXPIRED)

    admin = world.employer_admin
    assert opportunity_status(client, admin, world.opportunity["id"]) == "OPEN"
    assert opportunity_status(client, admin, draft["id"]) == "DRAFT"


def test_close_twice_records_once(internships_app, world):
    set_deadline(world.opportunity["id"], datetime.now(UTC) - timedelta(minutes=1))

    with db.transaction() as session:
        first = jobs.close_expired(session, now=datetime.now(UTC))
    with db.transaction() as session:
        second = jobs.close_expired(session, now=datetime.now(UTC))

    assert len(first) == 1
    assert second == []
    assert len(jobs_of("ledger.append")) == 1


def test_closing_changes_the_etag(internships_app, client, world):
    url = f"/api/v1/opportunities/{world.opportunity['id']}"
    before = client.get(url).headers["ETag"]
    set_deadline(world.opportunity["id"], datetime.now(UTC) - timedelta(minutes=1))

    with db.transaction() as session:
        jobs.close_expired(session, now=datetime.now(UTC))

    assert client.get(url).headers["ETag"] != before


def test_reminder_sent_once_per_deadline(internships_app, world):
    set_deadline(world.opportunity["id"], datetime.now(UTC) + timedelta(hours=3))

    run_job(internships_app, jobs.REMIND_DEADLINES)
    run_job(internships_app, jobs.REMIND_DEADLINES)

    [reminder] = jobs_of("notifications.notify")
    assert reminder["recipient_org_id"] == world.employer_id
    assert reminder["kind"] == "opportunity_deadline_near"


def test_moved_deadline_reminded_again(internships_app, world):
    set_deadline(world.opportunity["id"], datetime.now(UTC) + timedelta(hours=3))
    with db.transaction() as session:
        jobs.send_deadline_reminders(session, now=datetime.now(UTC))
    set_deadline(world.opportunity["id"], datetime.now(UTC) + timedelta(hours=5))

    with db.transaction() as session:
        again = jobs.send_deadline_reminders(session, now=datetime.now(UTC))

    assert len(again) == 1


def test_no_reminder_for_distant_deadline(internships_app, client, world):
    other = open_opportunity(client, world.employer_admin, world.employer_id)
    set_deadline(other["id"], datetime.now(UTC) + timedelta(hours=3))

    with db.transaction() as session:
        reminded = jobs.send_deadline_reminders(session, now=datetime.now(UTC))

    assert [str(item) for item in reminded] == [other["id"]]
    assert "notifications.notify" in job_names(other["id"])

"""Concurrent writers: If-Match on transitions, and the last free place."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.internships.helpers import insert_applications, move, patch_opportunity


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at the same moment in its own thread; return the results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        results[index] = call()

    threads = [
        threading.Thread(target=run, args=(index, call))
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_stale_if_match_is_412(client, world):
    [application_id] = insert_applications(world.opportunity)
    etag = client.get(
        f"/api/v1/applications/{application_id}", headers=world.employer_admin.headers
    ).headers["ETag"]
    move(client, world.employer_admin, application_id, "SHORTLISTED", etag=etag)

    response = move(client, world.employer_admin, application_id, "REJECTED", etag=etag)

    assert response.status_code == 412


def test_missing_if_match_is_428(client, world):
    [application_id] = insert_applications(world.opportunity)

    response = client.post(
        f"/api/v1/applications/{application_id}/transitions",
        json={"to": "SHORTLISTED"},
        headers=world.employer_admin.headers,
    )

    assert response.status_code == 428


def test_simultaneous_moves_one_wins(internships_app, world):
    [application_id] = insert_applications(world.opportunity)
    reader = internships_app.test_client()
    etag = reader.get(
        f"/api/v1/applications/{application_id}", headers=world.employer_admin.headers
    ).headers["ETag"]

    def shortlist() -> int:
        client = internships_app.test_client()
        return move(
            client, world.employer_admin, application_id, "SHORTLISTED", etag=etag
        ).status_code

    def reject() -> int:
        client = internships_app.test_client()
        return move(
            client, world.employer_admin, application_id, "REJECTED", etag=etag
        ).status_code

    statuses = run_together(shortlist, reject)

    assert sorted(statuses) == [200, 412]


def test_last_place_goes_to_one(internships_app, client, world):
    patch_opportunity(
        client, world.employer_admin, world.opportunity["id"], {"capacity": 1}
    )
    first, second = insert_applications(world.opportunity, 2, status="SHORTLISTED")

    def accept(application_id: str) -> Callable[[], int]:
        def call() -> int:
            own_client = internships_app.test_client()
            return move(
                own_client, world.employer_admin, application_id, "ACCEPTED"
            ).status_code

        return call

    statuses = run_together(accept(first), accept(second))

    assert sorted(statuses) == [200, 409]

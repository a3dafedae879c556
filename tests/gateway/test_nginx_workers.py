"""Through nginx with gateway workers in several processes: exact admission."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter

import pytest

from tests.gateway.harness import (
    ROOT,
    TEST_SETTINGS,
    client,
    gunicorn_gateway,
    nginx_stack,
)

WORKERS = 3
CLIENT_PROCESSES = 4
REQUESTS_PER_PROCESS = 30
LIMIT = 50


def send_requests(url: str, remote_ip: str, count: int) -> list[int]:
    session = client(remote_ip)
    return [session.get(url).status_code for _ in range(count)]


@pytest.fixture(scope="module")
def worker_stack(gateway_database, tokens, tmp_path_factory):
    runtime = tmp_path_factory.mktemp("workers")
    env = {
        **os.environ,
        **{name.upper(): str(value) for name, value in TEST_SETTINGS.items()},
        "DATABASE_URL": gateway_database,
        "JWKS_EXTRA_FILE": str(tokens.jwks_path),
        "RATELIMIT_OVERRIDES": json.dumps({"anonymous": f"{LIMIT}/day"}),
        # The project directory, so `import gateway` finds the package from
        # the repository root whichever way it was installed.
        "PYTHONPATH": str(ROOT / "gateway"),
    }
    with (
        gunicorn_gateway(
            env, workers=WORKERS, log_path=runtime / "gunicorn.log"
        ) as port,
        nginx_stack(port, runtime / "nginx", policy_timeout="20s") as running,
    ):
        yield running


@pytest.mark.slow
def test_workers_admit_exactly_the_limit(worker_stack):
    url = worker_stack.url + "/api/v1/opportunities"
    context = multiprocessing.get_context("spawn")
    args = (url, "192.0.2.77", REQUESTS_PER_PROCESS)

    with context.Pool(CLIENT_PROCESSES) as pool:
        results = pool.starmap(send_requests, [args] * CLIENT_PROCESSES)

    statuses = Counter(status for result in results for status in result)
    assert statuses[200] == LIMIT
    assert statuses[429] == CLIENT_PROCESSES * REQUESTS_PER_PROCESS - LIMIT

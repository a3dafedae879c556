"""The PostgreSQL counter store: exact admission under concurrency, expiry."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import (
    FixedWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)

from gateway.ratelimit.storage import PostgresStorage
from tests.gateway.harness import hammer_counter

PROCESSES = 4
THREADS = 4
ATTEMPTS_PER_PROCESS = 60
LIMIT = 50


@pytest.fixture(scope="module")
def storage_uri(gateway_database: str) -> str:
    return "postgresql+edulink://" + gateway_database.split("://", 1)[1]


@pytest.fixture
def storage(storage_uri: str):
    store = storage_from_string(storage_uri)
    yield store
    store.close()


@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter"])
def test_concurrent_processes_admit_exactly_limit(storage_uri, strategy):
    key = f"exact-{uuid.uuid4().hex}"
    context = multiprocessing.get_context("spawn")
    args = (storage_uri, strategy, f"{LIMIT}/day", key, ATTEMPTS_PER_PROCESS, THREADS)

    with context.Pool(PROCESSES) as pool:
        admitted = pool.starmap(hammer_counter, [args] * PROCESSES)

    assert sum(admitted) == LIMIT


def test_scheme_builds_postgres_storage(storage):
    assert isinstance(storage, PostgresStorage)
    assert storage.check() is True


def test_fixed_window_counts_and_rejects(storage):
    limiter = FixedWindowRateLimiter(storage)
    item = parse("3/hour")
    key = uuid.uuid4().hex

    results = [limiter.hit(item, key) for _ in range(4)]
    stats = limiter.get_window_stats(item, key)

    assert results == [True, True, True, False]
    assert stats.remaining == 0
    assert 3500 < stats.reset_time - time.time() <= 3600


def test_fixed_window_restarts_after_expiry(storage):
    key = uuid.uuid4().hex
    storage.incr(key, 1)
    storage.incr(key, 1)

    time.sleep(1.1)
    storage.forget_recent_writes()

    assert storage.get(key) == 0
    assert storage.incr(key, 1) == 1


def test_sliding_window_rejects_over_limit(storage):
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("2/hour")
    key = uuid.uuid4().hex

    results = [limiter.hit(item, key) for _ in range(3)]
    storage.forget_recent_writes()

    assert results == [True, True, False]
    assert limiter.get_window_stats(item, key).remaining == 0


def test_clear_resets_counter(storage):
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("1/hour")
    key = uuid.uuid4().hex
    limiter.hit(item, key)

    limiter.clear(item, key)

    assert limiter.hit(item, key) is True


def test_expired_counters_are_deleted(storage):
    key = uuid.uuid4().hex
    storage.incr(key, 1)

    deleted = storage.delete_expired(time.time() + 5)

    assert deleted >= 1
    storage.forget_recent_writes()
    assert storage.get(key) == 0


def test_unreachable_store_fails_check(storage_uri):
    store = PostgresStorage(
        "postgresql+edulink://root@127.0.0.1:1/nothing", timeout=0.5
    )

    assert store.check() is False
    store.close()


def test_invalid_table_name_rejected(storage_uri):
    with pytest.raises(ValueError, match="table name"):
        PostgresStorage(storage_uri, table="counters; DROP TABLE x")

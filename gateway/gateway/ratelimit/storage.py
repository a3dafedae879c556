"""Rate-limit counters in PostgreSQL, as a storage backend of the ``limits`` library.

Importing this module registers the storage scheme ``postgresql+edulink``, so
``storage_from_string("postgresql+edulink://user@host:5432/db")`` and
Flask-Limiter's ``RATELIMIT_STORAGE_URI`` accept it. Every gateway worker and
replica that points at the same database shares the counters.

Each operation that admits a hit is one SQL statement: an upsert that
increments the counter under the row lock PostgreSQL takes for
``ON CONFLICT DO UPDATE``. With many workers hitting one key, the fixed window
admits exactly ``limit`` hits per window, and the sliding window counter
admits a hit only when the weighted count stays within the limit.

Times are ``time.time()`` seconds of the calling process, as in the ``limits``
strategies, so replicas need synchronised clocks.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any

import psycopg
import psycopg_pool
from limits.storage import SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow

log = logging.getLogger(__name__)

SCHEME = "postgresql+edulink"
DEFAULT_TABLE = "gateway.rate_limit_counters"
_QUALIFIED_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")

# Expired rows deleted per statement, and statements per cleanup run.
CLEANUP_BATCH = 1000
CLEANUP_MAX_BATCHES = 20

INCR_SQL = """
INSERT INTO {table} AS c (key, count, expires_at)
VALUES (%(key)s, %(amount)s, %(now)s + %(expiry)s)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.expires_at <= %(now)s THEN EXCLUDED.count
                 ELSE c.count + EXCLUDED.count END,
    expires_at = CASE WHEN c.expires_at <= %(now)s THEN EXCLUDED.expires_at
                      ELSE c.expires_at END
RETURNING count, expires_at
"""

# The previous window's weighted count is read in the same statement. The
# insert runs only if the hit fits with an empty current window; on conflict
# the update re-checks against the locked row's latest count.
SLIDING_ACQUIRE_SQL = """
WITH previous AS (
    SELECT coalesce(sum(count), 0) AS count FROM {table}
    WHERE key = %(previous_key)s AND expires_at > %(now)s
)
INSERT INTO {table} AS c (key, count, expires_at)
SELECT %(key)s, %(amount)s, %(now)s + %(window)s FROM previous
WHERE floor(previous.count * %(weight)s) + %(amount)s <= %(limit)s
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.expires_at <= %(now)s THEN EXCLUDED.count
                 ELSE c.count + EXCLUDED.count END,
    expires_at = CASE WHEN c.expires_at <= %(now)s THEN EXCLUDED.expires_at
                      ELSE c.expires_at END
WHERE floor(
    (SELECT count FROM previous) * %(weight)s
    + CASE WHEN c.expires_at <= %(now)s THEN 0 ELSE c.count END
) + EXCLUDED.count <= %(limit)s
RETURNING c.count, (SELECT count FROM previous)
"""

GET_SQL = "SELECT count, expires_at FROM {table} WHERE key = %s AND expires_at > %s"
GET_MANY_SQL = "SELECT key, count FROM {table} WHERE key = ANY(%s) AND expires_at > %s"
CLEAR_SQL = "DELETE FROM {table} WHERE key = ANY(%s)"
RESET_SQL = "DELETE FROM {table}"
CLEANUP_SQL = """
DELETE FROM {table} WHERE key IN (
    SELECT key FROM {table} WHERE expires_at <= %s
    LIMIT %s FOR UPDATE SKIP LOCKED
)
"""


def conninfo_from_uri(uri: str) -> str:
    """Turn ``postgresql+edulink://...`` into a libpq ``postgresql://...`` URL."""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme != SCHEME:
        raise ValueError(f"not a {SCHEME}:// URI: {scheme}://...")
    return f"postgresql://{rest}"


class PostgresStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Fixed window and sliding window counter storage in one PostgreSQL table.

    Options (keyword arguments, or Flask-Limiter's ``RATELIMIT_STORAGE_OPTIONS``):
    ``table`` (schema-qualified name), ``pool_size``, ``timeout`` (seconds to
    wait for a connection), ``cleanup_interval`` (seconds between deletions of
    expired rows, per process) and ``recent_write_seconds`` (see
    :meth:`forget_recent_writes`).
    """

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 - the limits registry reads a list

    def __init__(
        self,
        uri: str,
        wrap_exceptions: bool = False,
        *,
        table: str = DEFAULT_TABLE,
        pool_size: int = 4,
        timeout: float = 2.0,
        cleanup_interval: float = 60.0,
        recent_write_seconds: float = 0.5,
        **_options: Any,
    ) -> None:
        if not _QUALIFIED_NAME.match(table):
            raise ValueError(f"invalid counter table name {table!r}")
        self.conninfo = conninfo_from_uri(uri)
        self.table = table
        self.pool_size = pool_size
        self.timeout = timeout
        self.cleanup_interval = cleanup_interval
        self.recent_write_seconds = recent_write_seconds
        self._sql = {
            name: sql.format(table=table)
            for name, sql in {
                "incr": INCR_SQL,
                "acquire": SLIDING_ACQUIRE_SQL,
                "get": GET_SQL,
                "get_many": GET_MANY_SQL,
                "clear": CLEAR_SQL,
                "reset": RESET_SQL,
                "cleanup": CLEANUP_SQL,
            }.items()
        }
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._recent = threading.local()
        self._next_cleanup = time.monotonic() + cleanup_interval
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return psycopg.Error

    # Connections.

    def _connections(self) -> psycopg_pool.ConnectionPool:
        """Return this process's pool, opening a new one after a fork."""
        pid = os.getpid()
        if self._pool is not None and self._pool_pid == pid:
            return self._pool
        with self._pool_lock:
            if self._pool is None or self._pool_pid != pid:
                self._pool = psycopg_pool.ConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self.pool_size,
                    timeout=self.timeout,
                    kwargs={
                        "autocommit": True,
                        "connect_timeout": max(1, round(self.timeout)),
                        "application_name": "gateway-ratelimit",
                        # A counter lost in a crash only resets a window, so
                        # commits need not wait for the WAL flush.
                        "options": "-c synchronous_commit=off",
                    },
                    name="ratelimit",
                    open=False,
                )
                self._pool.open(wait=False)
                self._pool_pid = pid
        return self._pool

    def _execute(self, name: str, params: Any) -> list[tuple[Any, ...]]:
        with self._connections().connection() as connection:
            cursor = connection.execute(self._sql[name], params)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        """Close this process's connections."""
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close()
        self._pool = None

    # Reads of this thread's own recent writes.

    def forget_recent_writes(self) -> None:
        """Make the next reads go to the database.

        A read of a key that this thread wrote less than
        ``recent_write_seconds`` ago returns the written values without a
        query. The rate-limit headers of a response read the counters the same
        request just incremented, so this saves a round trip per limit. The
        gateway calls this at the start of every request.
        """
        self._recent.values = {}

    def _remember(self, key: str, count: int, expires_at: float) -> None:
        values = getattr(self._recent, "values", None)
        if values is None:
            values = self._recent.values = {}
        values[key] = (count, expires_at, time.monotonic())

    def _recall(self, key: str) -> tuple[int, float] | None:
        values = getattr(self._recent, "values", None)
        if not values or key not in values:
            return None
        count, expires_at, written = values[key]
        if time.monotonic() - written > self.recent_write_seconds:
            return None
        return count, expires_at

    # Fixed window.

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        rows = self._execute(
            "incr", {"key": key, "amount": amount, "now": now, "expiry": expiry}
        )
        count, expires_at = rows[0]
        self._remember(key, count, expires_at)
        self._cleanup_if_due(now)
        return int(count)

    def get(self, key: str) -> int:
        recent = self._recall(key)
        if recent is not None:
            return recent[0]
        rows = self._execute("get", (key, time.time()))
        return int(rows[0][0]) if rows else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        recent = self._recall(key)
        if recent is not None:
            return recent[1]
        rows = self._execute("get", (key, now))
        return float(rows[0][1]) if rows else now

    def clear(self, key: str) -> None:
        self.forget_recent_writes()
        self._execute("clear", ([key],))

    def reset(self) -> int | None:
        with self._connections().connection() as connection:
            return connection.execute(self._sql["reset"]).rowcount

    def check(self) -> bool:
        try:
            with self._connections().connection(timeout=self.timeout) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            log.warning("rate-limit counter store check failed: %s", error)
            return False
        return True

    # Sliding window counter.

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        rows = self._execute(
            "acquire",
            {
                "key": current_key,
                "previous_key": previous_key,
                "amount": amount,
                "limit": limit,
                "now": now,
                # A window's counter must outlive the next window, which weighs it.
                "window": 2 * expiry,
                "weight": _previous_weight(now, expiry),
            },
        )
        self._cleanup_if_due(now)
        if not rows:
            return False
        current_count, previous_count = rows[0]
        self._remember(current_key, int(current_count), now + 2 * expiry)
        self._remember(previous_key, int(previous_count), now + expiry)
        return True

    def get_sliding_window(
        self, key: str, expiry: int
    ) -> tuple[int, float, int, float]:
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._recall(previous_key)
        current = self._recall(current_key)
        if previous is not None and current is not None:
            counts = {previous_key: previous[0], current_key: current[0]}
        else:
            rows = self._execute("get_many", ([previous_key, current_key], now))
            counts = {row_key: int(count) for row_key, count in rows}

        previous_count = counts.get(previous_key, 0)
        current_count = counts.get(current_key, 0)
        previous_ttl = _previous_weight(now, expiry) * expiry if previous_count else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        self.forget_recent_writes()
        self._execute("clear", ([previous_key, current_key],))

    # Expired rows.

    def _cleanup_if_due(self, now: float) -> None:
        if time.monotonic() < self._next_cleanup:
            return
        self._next_cleanup = time.monotonic() + self.cleanup_interval
        try:
            self.delete_expired(now)
        except psycopg.Error as error:
            log.warning("deleting expired rate-limit counters failed: %s", error)

    def delete_expired(self, now: float | None = None) -> int:
        """Delete counters whose window has ended. Returns how many were deleted."""
        now = time.time() if now is None else now
        deleted = 0
        with self._connections().connection() as connection:
            for _ in range(CLEANUP_MAX_BATCHES):
                cursor = connection.execute(self._sql["cleanup"], (now, CLEANUP_BATCH))
                deleted += cursor.rowcount
                if cursor.rowcount < CLEANUP_BATCH:
                    break
        if deleted:
            log.info("deleted %d expired rate-limit counters", deleted)
        return deleted


def _previous_weight(now: float, expiry: int) -> float:
    """Share of the previous window that still overlaps the sliding window."""
    return 1 - (((now - expiry) / expiry) % 1)

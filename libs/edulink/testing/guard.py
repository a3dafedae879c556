"""Count SQL statements and service calls in a block, to catch N+1 patterns.

    with count_queries(engine) as counter:
        client.get("/v1/students")
    counter.assert_max(statements=3, calls=0)

Counting is global, not per thread: statements that other threads run on
the same engine, and calls that other threads make, are counted too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from edulink.http import OutgoingCall, add_call_listener, remove_call_listener


class QueryCounter:
    """SQL statements and outgoing service calls recorded inside a block."""

    def __init__(self) -> None:
        self.recorded_statements: list[str] = []
        self.recorded_calls: list[OutgoingCall] = []
        self._lock = threading.Lock()

    @property
    def statements(self) -> int:
        """Number of statements sent to the database (an executemany counts once)."""
        return len(self.recorded_statements)

    @property
    def calls(self) -> int:
        """Number of ServiceClient calls, each counted once whatever its retries."""
        return len(self.recorded_calls)

    def report(self) -> str:
        """List every recorded statement and call, numbered, one per line."""
        lines = [f"{self.statements} SQL statements:"]
        lines += [
            f"  {number}. {' '.join(statement.split())}"
            for number, statement in enumerate(self.recorded_statements, 1)
        ]
        lines.append(f"{self.calls} service calls:")
        lines += [
            f"  {number}. {call.method} {call.path} on {call.service} "
            f"-> {call.status or call.error} ({call.attempts} attempts)"
            for number, call in enumerate(self.recorded_calls, 1)
        ]
        return "\n".join(lines)

    def assert_max(
        self, *, statements: int | None = None, calls: int | None = None
    ) -> None:
        """Raise AssertionError, listing what ran, when a count exceeds its limit."""
        problems = []
        if statements is not None and self.statements > statements:
            problems.append(
                f"expected at most {statements} SQL statements, got {self.statements}"
            )
        if calls is not None and self.calls > calls:
            problems.append(f"expected at most {calls} service calls, got {self.calls}")
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.report())

    def _record_statement(
        self,
        _connection: Any,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        with self._lock:
            self.recorded_statements.append(statement)

    def _record_call(self, call: OutgoingCall) -> None:
        with self._lock:
            self.recorded_calls.append(call)


@contextmanager
def count_queries(engine: Engine | None = None) -> Iterator[QueryCounter]:
    """Record the statements run on ``engine`` and all ServiceClient calls.

    Without ``engine`` only service calls are recorded.
    """
    counter = QueryCounter()
    if engine is not None:
        event.listen(engine, "before_cursor_execute", counter._record_statement)
    add_call_listener(counter._record_call)
    try:
        yield counter
    finally:
        remove_call_listener(counter._record_call)
        if engine is not None:
            event.remove(engine, "before_cursor_execute", counter._record_statement)

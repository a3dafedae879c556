"""A pgqueuer driver on two psycopg connections: one for queries, one for LISTEN.

pgqueuer's own psycopg driver (1.6.0) runs both on one connection. psycopg's
``notifies()`` holds the connection lock while it waits, so a dequeue that
follows a wake-up can wait for the next notification or the 1 s poll. With
LISTEN on a connection of its own, nothing else waits for that lock.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Self

import psycopg
from pgqueuer.core.tm import TaskManager
from pgqueuer.ports.driver import NotifyCallback
from psycopg import sql
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

# How often the LISTEN loop wakes without a notification to check for shutdown.
_LISTEN_POLL_SECONDS = 0.5


class SplitPsycopgDriver:
    """Implements pgqueuer's ``Driver`` port. Both connections must be autocommit."""

    def __init__(
        self,
        connection: psycopg.AsyncConnection,
        listen_connection: psycopg.AsyncConnection,
    ) -> None:
        for conn in (connection, listen_connection):
            if not conn.autocommit:
                raise ValueError("pgqueuer needs autocommit connections")
        self._connection = connection
        self._listen_connection = listen_connection
        self._shutdown = asyncio.Event()
        self._tm = TaskManager()
        self._callbacks: dict[str, list[NotifyCallback]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._entered = 0

    @property
    def shutdown(self) -> asyncio.Event:
        return self._shutdown

    @property
    def tm(self) -> TaskManager:
        return self._tm

    async def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        cursor = psycopg.AsyncRawCursor(self._connection, row_factory=dict_row)
        async with cursor:
            await cursor.execute(query, args or None)
            return await cursor.fetchall() if cursor.description else []

    async def execute(self, query: str, *args: object) -> str:
        async with psycopg.AsyncRawCursor(self._connection) as cursor:
            await cursor.execute(query, args or None)
            return cursor.statusmessage or ""

    async def notify(self, channel: str, payload: str) -> None:
        await self.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def add_listener(self, channel: str, callback: NotifyCallback) -> None:
        if channel not in self._callbacks:
            listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
            await self._listen_connection.execute(listen)
            self._callbacks[channel] = []
        self._callbacks[channel].append(callback)
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="edulink-listen")
            self._tm.add(self._watcher)  # type: ignore[arg-type]

    async def remove_listener(self, channel: str, callback: NotifyCallback) -> None:
        callbacks = self._callbacks.get(channel, [])
        if callback in callbacks:
            callbacks.remove(callback)

    async def _watch(self) -> None:
        # A failure here ends the task; pgqueuer's periodic LISTEN health check
        # then fails and the worker reconnects.
        while not self._shutdown.is_set():
            notifies = self._listen_connection.notifies(timeout=_LISTEN_POLL_SECONDS)
            async for note in notifies:
                for callback in list(self._callbacks.get(note.channel, [])):
                    try:
                        callback(note.payload)
                    except Exception:
                        log.exception(
                            "NOTIFY callback failed on channel %s", note.channel
                        )

    async def __aenter__(self) -> Self:
        if self._entered == 0:
            self._shutdown.clear()
        self._entered += 1
        return self

    async def __aexit__(self, *_: object) -> None:
        # pgqueuer enters one driver from several places; the last exit stops it.
        self._entered -= 1
        if self._entered > 0:
            return
        self._shutdown.set()
        if self._watcher is not None:
            self._watcher.cancel()
        await self._tm.gather_tasks()
        self._watcher = None
        self._callbacks.clear()

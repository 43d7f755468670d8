"""One writer per conversation, within a process and across processes.

A per-key ``asyncio.Lock`` orders the turns of one process, so a process never spins on
its own database lock. Across processes, a PostgreSQL session advisory lock keyed by the
conversation is taken with ``pg_try_advisory_lock`` on one dedicated connection per
process: one connection holds any number of keys, so a turn waiting for a slow model does
not pin a pooled connection, and a busy conversation in another process is retried with
backoff instead of blocking a session. If that connection dies, its locks die with it;
the compare-and-set on the conversation head (core/storage/conversations.py) still refuses a second
writer's turn.

Behind PgBouncer in transaction mode a session lock is unsafe (the lock and the unlock can
land on different server connections), so ``conninfo`` (``BACKTRACK_LOCK_DATABASE_URL``)
names a direct connection for this one connection; core/storage/pooling.py refuses the unsafe setup.

A turn takes its lock in the same round trip as its start (``hold(key, acquire=...)`` with
the statement of core/storage/conversations.py, a function that tries the lock first and
does the rest only if it got it), so a turn's fixed cost is one round trip to begin.

The lock connection is opened with the pool's own settings (``connection_kwargs``) and
on demand, so after an outage the first turn that needs it connects at once. A lock
connection that died while idle (a restarted server) is replaced and the query retried
once, and every query is bounded by ``BACKTRACK_DB_TIMEOUT``, so a hung server makes a
turn fail with the storage message instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from core.errors import ConversationBusy
from core.keys import ThreadKey
from core.logs import span
from core.storage.db import NoAnswer, Pool, bounded

__all__ = ["BUSY_MESSAGE", "ConversationLocks"]

_log = logging.getLogger(__name__)

_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0)) AS locked"

BUSY_MESSAGE = "I'm still answering your previous message here; please wait for that answer."


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ConversationLocks:
    def __init__(
        self, pool: Pool, *, timeout: float = 300.0, connect_timeout: float = 5.0, conninfo: str | None = None
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._slots: dict[str, _Slot] = {}
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._conn_lock = asyncio.Lock()

    def busy(self, key: ThreadKey) -> bool:
        slot = self._slots.get(str(key))
        return slot is not None and slot.lock.locked()

    def queued(self) -> int:
        """Callers waiting behind a conversation's current holder, across all conversations."""
        return sum(max(slot.users - 1, 0) for slot in self._slots.values())

    @asynccontextmanager
    async def hold(
        self, key: ThreadKey, *, wait: bool = True, acquire: tuple[str, tuple[Any, ...]] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Hold the conversation; with ``wait=False`` raise ``ConversationBusy`` instead of queueing.

        ``acquire`` replaces the plain lock statement with one that tries the same lock and
        answers a row with ``locked``; the row is what ``hold`` yields.
        """
        name = str(key)
        if not wait and self.busy(key):
            raise ConversationBusy(BUSY_MESSAGE)
        slot = self._slots.setdefault(name, _Slot())
        slot.users += 1
        try:
            async with slot.lock:
                try:
                    with span("backtrack.lock", **{"backtrack.conversation": name}):  # waits for the writer
                        row = await self._acquire(acquire or (_TRY_LOCK, (name,)), wait)
                except ConversationBusy:
                    raise
                except BaseException:
                    if acquire is not None:  # it may have failed after taking the lock
                        await self._release(name)
                    raise
                try:
                    yield row
                finally:
                    await self._release(name)
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[name]

    async def _acquire(self, statement: tuple[str, tuple[Any, ...]], wait: bool) -> dict[str, Any]:
        delay, waited = 0.02, 0.0
        while not (row := await self._query(*statement))["locked"]:
            if not wait or waited >= self._timeout:
                raise ConversationBusy(BUSY_MESSAGE)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)
        return row

    async def _release(self, name: str) -> None:
        try:
            await asyncio.shield(self._query(_UNLOCK, (name,)))
        except (psycopg.Error, asyncio.CancelledError):
            # The lock lives in the session: dropping the connection releases it for sure.
            _log.warning("could not release the lock of %s; dropping the lock connection", name)
            await self._drop()

    async def _query(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
        async with self._conn_lock:
            fresh = self._conn is None or self._conn.closed
            try:
                return await self._execute(sql, params)
            except psycopg.OperationalError as exc:
                if fresh or isinstance(exc, NoAnswer):
                    raise
                # the connection died while idle (a restarted server): one new one, once
                _log.info("the lock connection was lost; reconnecting")
                return await self._execute(sql, params)

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
        try:
            if self._conn is None or self._conn.closed:
                conninfo = self._conninfo or self._pool.conninfo
                assert isinstance(conninfo, str), "the pool is built from a URL"
                kwargs = self._pool.kwargs
                assert isinstance(kwargs, dict), "the pool is built with connection_kwargs"
                self._conn = await self._pool.connection_class.connect(conninfo, **kwargs)
            conn = self._conn
            cursor = await bounded(conn, conn.execute(sql, params), self._connect_timeout)
            row = await cursor.fetchone()
        except psycopg.OperationalError:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            raise
        return dict(row) if row else {"locked": False}

    async def _drop(self) -> None:
        async with self._conn_lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def close(self) -> None:
        await self._drop()

"""One writer per conversation, within a process and across processes.

A per-key ``asyncio.Lock`` orders the turns of one process (so it never spins on its own
database lock), and a PostgreSQL session advisory lock, keyed by the conversation, orders
the processes that share a database. Different keys never wait for each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import psycopg

from core.db import Pool
from core.errors import ConversationBusy
from core.keys import ThreadKey

__all__ = ["ConversationLocks"]

_log = logging.getLogger(__name__)

_LOCK = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS ok"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"

BUSY_MESSAGE = "I'm still answering your previous message here; please wait for that answer."


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ConversationLocks:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._slots: dict[str, _Slot] = {}

    def busy(self, key: ThreadKey) -> bool:
        slot = self._slots.get(str(key))
        return slot is not None and slot.lock.locked()

    @asynccontextmanager
    async def hold(self, key: ThreadKey, *, wait: bool = True) -> AsyncIterator[None]:
        """Hold the conversation; with ``wait=False`` raise ``ConversationBusy`` instead of queueing."""
        name = str(key)
        if not wait and self.busy(key):
            raise ConversationBusy(BUSY_MESSAGE)
        slot = self._slots.setdefault(name, _Slot())
        slot.users += 1
        try:
            async with slot.lock, self._pool.connection() as conn:
                if wait:
                    await conn.execute(_LOCK, (name,))
                else:
                    row = await (await conn.execute(_TRY_LOCK, (name,))).fetchone()
                    if not (row and row["ok"]):
                        raise ConversationBusy(BUSY_MESSAGE)
                try:
                    yield
                finally:
                    await _unlock(conn, name)
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[name]


async def _unlock(conn: psycopg.AsyncConnection[object], name: str) -> None:
    try:
        await asyncio.shield(conn.execute(_UNLOCK, (name,)))
    except (psycopg.Error, asyncio.CancelledError):
        # A session lock dies with its session: closing the connection releases it for sure.
        _log.warning("could not release the lock of %s; closing its connection", name)
        await conn.close()

"""Platform deliveries already handled: the ``processed_events`` table.

Platforms deliver at least once (Slack retries, mention twins, a client's retried
request); the first instance to claim a delivery's id handles it, every other one skips
it. A claim may carry what handling produced (a checkpoint id), so a retry can be given
the first answer; ids expire after ``BACKTRACK_EVENT_TTL_HOURS`` (``core/storage/retention.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from core.storage.db import STORAGE_ERRORS, storage_errors

if TYPE_CHECKING:
    from core.storage.db import Pool

__all__ = ["Deliveries"]

_CLAIM = """
INSERT INTO processed_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING event_id
"""

_SETTLE = "UPDATE processed_events SET result = %s WHERE event_id = %s"
_RESULT = "SELECT result FROM processed_events WHERE event_id = %s"
_RELEASE = "DELETE FROM processed_events WHERE event_id = %s"


class Deliveries:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def claim(self, event_id: str) -> bool:
        """True for the first claim of ``event_id``, across processes."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CLAIM, (event_id,))).fetchone()
        return row is not None

    async def settle(self, event_id: str, result: str) -> None:
        """Remember what handling the event produced (a checkpoint id), for its retries."""
        async with self.pool.connection() as conn:
            await conn.execute(_SETTLE, (result, event_id))

    async def result(self, event_id: str) -> str | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_RESULT, (event_id,))).fetchone()
        return row["result"] if row else None

    @asynccontextmanager
    async def once(self, event_id: str) -> AsyncIterator[bool]:
        """Claim ``event_id`` around the work it starts: yields whether this is the first
        claim; work that fails (or is cancelled) frees the claim, so a retry may do it again."""
        async with storage_errors():
            first = await self.claim(event_id)
        try:
            yield first
        except BaseException:
            if first:
                with contextlib.suppress(*STORAGE_ERRORS):
                    await asyncio.shield(self.release(event_id))
            raise

    async def release(self, event_id: str) -> None:
        """Forget a claim whose handling failed, so a retry may try again."""
        async with self.pool.connection() as conn:
            await conn.execute(_RELEASE, (event_id,))

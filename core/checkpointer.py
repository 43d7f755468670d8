"""LangGraph's Postgres checkpointer, without its process-wide lock when given a pool.

``AsyncPostgresSaver`` wraps every database call in one ``asyncio.Lock`` so a single
shared connection is never used by two coroutines at once. With a pool each call checks
out its own connection, so the lock only serialises unrelated conversations
(langgraph#7259). Per-conversation ordering is the conversation service's job.

Channel versions are also shorter than upstream's (``0000000042.9f3c21ab`` instead of a
32-digit counter and a 16-digit float): every checkpoint row repeats each version two or
three times, so this is a fifth of what a turn stores. They still sort by counter, and
older, longer versions sort below them, so existing threads continue correctly. The
random suffix keeps two branches forked from one checkpoint from sharing a blob key.
"""

from __future__ import annotations

import random
from types import TracebackType

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from core.db import Pool

__all__ = ["PooledPostgresSaver"]


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class PooledPostgresSaver(AsyncPostgresSaver):
    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self.lock = _NoLock()  # type: ignore[assignment]

    def get_next_version(self, current: str | None, channel: None) -> str:
        counter = 0 if current is None else int(str(current).split(".")[0])
        return f"{counter + 1:010}.{random.getrandbits(32):08x}"

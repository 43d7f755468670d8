"""LangGraph's Postgres checkpointer, without its process-wide lock when given a pool.

``AsyncPostgresSaver`` wraps every database call in one ``asyncio.Lock`` so a single
shared connection is never used by two coroutines at once. With a pool each call checks
out its own connection, so the lock only serialises unrelated conversations
(langgraph#7259). Per-conversation ordering is the conversation service's job.
"""

from __future__ import annotations

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

"""What is remembered about a person: events in LangGraph's ``AsyncPostgresStore``.

Each remember or forget is one item under the person's namespace
``("memory", platform, workspace, user)``, never changed afterwards; what is remembered
now is a fold of the events that are live. An event written by a turn is live while that
turn is on its conversation's live branch (``turns.run_id`` ties the two), so a rewind to
before it retracts it — and brings back what it replaced or forgot — and switching back
restores it; an event of a command (``/memory forget``) has no turn and is always live.
The store shares the pool and the migration lock; it is used without a vector index (the
embedded PostgreSQL has no pgvector): lookups are by namespace.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langgraph.store.postgres.aio import AsyncPostgresStore

    from core.storage.db import Pool

__all__ = ["MAX_EVENTS", "Memory", "MemoryStore", "Namespace"]

MAX_EVENTS = 500
"""Events read per person; older ones beyond it are not folded in (docs/memory.md)."""

Namespace = tuple[str, ...]

# The turns on the live branch of each conversation, walked up from its head.
_LIVE = """
WITH RECURSIVE live AS (
    SELECT t.id, t.parent_id, t.run_id, t.seq, t.conversation_key FROM turns t
    JOIN conversations c ON t.id = c.head_turn_id WHERE c.key = ANY(%(keys)s)
  UNION ALL
    SELECT p.id, p.parent_id, p.run_id, p.seq, p.conversation_key
    FROM turns p JOIN live l ON p.id = l.parent_id
)
SELECT conversation_key, run_id, seq FROM live WHERE run_id = ANY(%(runs)s)
"""


@dataclass(frozen=True, slots=True)
class Memory:
    topic: str
    fact: str
    conversation: str | None
    """The conversation whose turn wrote it (None: not written by a turn)."""
    turn: int | None
    """That turn's number on its live branch, as ``/history`` numbers it."""
    at: datetime


class MemoryStore:
    def __init__(self, store: AsyncPostgresStore, pool: Pool) -> None:
        self.store = store
        self.pool = pool

    async def write(
        self, namespace: Namespace, topic: str, fact: str | None, conversation: str | None, run_id: str | None
    ) -> None:
        key = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"  # sorts in the order written
        value = {"topic": topic, "fact": fact, "conversation": conversation, "run_id": run_id,
                 "at": datetime.now(UTC).isoformat()}
        await self.store.aput(namespace, key, value, index=False)

    async def current(self, namespace: Namespace, running: str | None = None) -> list[Memory]:
        """What is remembered now, oldest first; ``running``: the run in progress counts as live."""
        items = await self.store.asearch(namespace, limit=MAX_EVENTS)
        events: list[dict[str, Any]] = [i.value for i in sorted(items, key=lambda i: i.key)]
        live = await self._live({(e["conversation"], e["run_id"]) for e in events if e.get("run_id")})
        found: dict[str, Memory] = {}
        for e in events:
            where = (e.get("conversation"), e.get("run_id"))
            if e.get("run_id") and e["run_id"] != running and where not in live:
                continue  # written on a branch that is not live now
            found.pop(e["topic"], None)
            if e.get("fact") is not None:
                found[e["topic"]] = Memory(e["topic"], e["fact"], e.get("conversation"), live.get(where),
                                           datetime.fromisoformat(e["at"]))
        return list(found.values())

    async def clear(self, namespace: Namespace) -> int:
        """Delete every event of a person (``/memory forget all`` keeps none of them)."""
        items = await self.store.asearch(namespace, limit=MAX_EVENTS)
        for item in items:
            await self.store.adelete(namespace, item.key)
        return len(items)

    async def _live(self, written: set[tuple[Any, Any]]) -> dict[tuple[Any, Any], int]:
        if not written:
            return {}
        params = {"keys": list({c for c, _ in written}), "runs": list({r for _, r in written})}
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_LIVE, params)).fetchall()
        return {(r["conversation_key"], r["run_id"]): r["seq"] for r in rows}

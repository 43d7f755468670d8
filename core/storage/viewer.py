"""What the web viewer reads: a searchable page of conversations and a conversation's turn tree.

Every query is bounded by its page size, so a long conversation or a big installation
costs the viewer one page, not everything stored. The only read of LangGraph's tables is
the metadata of each listed turn's end checkpoint, for ``replay_of`` (which turn a replay
asked again), by primary key.
"""

from __future__ import annotations

from typing import Any

from core.keys import ThreadKey
from core.records import ConversationPage, ConversationSummary, TreeTurn
from core.storage.db import Pool
from core.storage.feedback import RATINGS
from core.storage.tree import turn_from_row

__all__ = ["MAX_PAGE", "MAX_TREE", "Inspector"]

MAX_PAGE = 100
"""Conversations per page of the list."""
MAX_TREE = 300
"""Turns per load of a conversation's tree (the newest; older ones load on request)."""

_PAGE = """
SELECT c.key, c.title, c.last_active_at, coalesce(t.seq, 0) AS turns,
       EXISTS (SELECT 1 FROM approvals a
               WHERE a.conversation_key = c.key AND a.status = 'pending') AS pending
FROM conversations c LEFT JOIN turns t ON t.id = c.head_turn_id
WHERE (%(platform)s::text IS NULL OR c.platform = %(platform)s)
  AND (%(search)s::text IS NULL OR c.title ILIKE %(search)s ESCAPE '\\' OR c.key ILIKE %(search)s ESCAPE '\\')
  AND (%(scopes)s::text[] IS NULL OR EXISTS (
        SELECT 1 FROM unnest(%(scopes)s::text[]) s
        WHERE c.key = s OR c.key LIKE s || ':%%' OR (c.platform = 'discord' AND c.key LIKE s || '-%%')))
ORDER BY c.last_active_at DESC, c.key
LIMIT %(limit)s OFFSET %(offset)s
"""

_TREE = """
WITH RECURSIVE live AS (
    SELECT t.id, t.parent_id FROM turns t
    JOIN conversations c ON t.id = c.head_turn_id WHERE c.key = %(key)s
  UNION ALL
    SELECT p.id, p.parent_id FROM turns p JOIN live l ON p.id = l.parent_id
), page AS (
    SELECT * FROM turns
    WHERE conversation_key = %(key)s AND (%(before)s::bigint IS NULL OR id < %(before)s)
    ORDER BY id DESC LIMIT %(limit)s
)
SELECT t.*, p.checkpoint_id AS parent_checkpoint_id, l.id IS NOT NULL AS live,
       (SELECT k.metadata ->> 'replay_of' FROM checkpoints k
        WHERE k.thread_id = t.conversation_key AND k.checkpoint_ns = ''
          AND k.checkpoint_id = t.checkpoint_id) AS replay_of,
       """ + RATINGS.format(turn="t") + """
FROM page t
LEFT JOIN turns p ON p.id = t.parent_id
LEFT JOIN live l ON l.id = t.id
ORDER BY t.id DESC
"""

_TITLE = "SELECT title FROM conversations WHERE key = %s"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Inspector:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def conversations(
        self, search: str | None, platform: str | None, offset: int, limit: int,
        scopes: tuple[str, ...] | None = None,
    ) -> ConversationPage:
        """``scopes``: only conversations inside one of them (``core.keys.within``, in SQL)."""
        params: dict[str, Any] = {
            "platform": platform,
            "scopes": list(scopes) if scopes is not None else None,
            "search": _like(search) if search else None,
            "limit": limit + 1,
            "offset": offset,
        }
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_PAGE, params)).fetchall()
        found = [
            ConversationSummary(
                key=ThreadKey.decode(r["key"]), title=r["title"], turns=r["turns"],
                last_active_at=r["last_active_at"], pending=r["pending"],
            )
            for r in rows[:limit]
        ]
        return ConversationPage(found, more=len(rows) > limit)

    async def title(self, key: ThreadKey) -> str:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_TITLE, (str(key),))).fetchone()
        return str(row["title"]) if row else str(key)

    async def turns(self, key: ThreadKey, before: int | None, limit: int) -> tuple[list[TreeTurn], bool]:
        """The newest ``limit`` turns of every branch (older than turn id ``before``), oldest first."""
        params = {"key": str(key), "before": before, "limit": limit + 1}
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_TREE, params)).fetchall()
        turns = [
            TreeTurn(
                turn=turn_from_row(r), parent_checkpoint_id=r["parent_checkpoint_id"],
                live=r["live"], replay_of=r["replay_of"],
            )
            for r in rows[:limit]
        ]
        return list(reversed(turns)), len(rows) > limit

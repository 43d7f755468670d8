"""Reading the turn tree: a branch, a turn by its checkpoint, every branch, the rewinds.

Turns form a tree through ``parent_id``; a conversation's ``head_turn_id`` picks the live
branch. Listing the branch walks parents from the head with a ``LIMIT``, so its cost is
bounded by the limit, not by the conversation's length or its abandoned branches. The
writes are ``ConversationStore``'s (``core/storage/conversations.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.keys import ThreadKey
from core.records import BranchTurn, ConversationInfo, Rewind, Turn
from core.storage.feedback import RATINGS, ratings

if TYPE_CHECKING:
    from core.storage.db import Pool

__all__ = ["TurnTree", "turn_from_row"]

_BRANCH = """
WITH RECURSIVE branch AS (
    SELECT t.* FROM turns t
    JOIN conversations c ON t.id = c.head_turn_id WHERE c.key = %(key)s
  UNION ALL
    SELECT p.* FROM turns p JOIN branch b ON p.id = b.parent_id
)
SELECT b.*, """ + RATINGS.format(turn="b") + """ FROM branch b LIMIT %(limit)s
"""

_TURN_BY_CHECKPOINT = "SELECT * FROM turns WHERE conversation_key = %s AND checkpoint_id = %s"

_LIST = """
SELECT c.*, coalesce(t.seq, 0) AS turns FROM conversations c
LEFT JOIN turns t ON t.id = c.head_turn_id
WHERE (%(platform)s::text IS NULL OR c.platform = %(platform)s)
  AND (%(place)s::text IS NULL OR c.place = %(place)s)
  AND (%(user)s::text IS NULL OR EXISTS (
        SELECT 1 FROM turns u WHERE u.conversation_key = c.key AND u.user_id = %(user)s))
ORDER BY c.last_active_at DESC
LIMIT %(limit)s
"""

_ALL_TURNS = """
SELECT t.*, p.checkpoint_id AS parent_checkpoint_id, """ + RATINGS.format(turn="t") + """
FROM turns t
LEFT JOIN turns p ON p.id = t.parent_id
WHERE t.conversation_key = %s ORDER BY t.id LIMIT %s
"""

_REWINDS = """
SELECT r.user_id, r.created_at, f.checkpoint_id AS from_checkpoint_id, t.checkpoint_id AS to_checkpoint_id
FROM rewinds r
LEFT JOIN turns f ON f.id = r.from_turn_id
LEFT JOIN turns t ON t.id = r.to_turn_id
WHERE r.conversation_key = %s ORDER BY r.id LIMIT %s
"""

_TURN_PARENT = "SELECT p.* FROM turns t JOIN turns p ON p.id = t.parent_id WHERE t.id = %s"


def turn_from_row(row: dict[str, Any]) -> Turn:
    """A ``turns`` row (with the ``RATINGS`` column) as a ``Turn``."""
    return Turn(
        index=row["seq"],
        user=row["user_id"],
        question=row["question"],
        answer=row["answer"],
        at=row["created_at"],
        checkpoint_id=row["checkpoint_id"],
        turn_id=row["id"],
        feedback=ratings(row.get("feedback")),
    )



class TurnTree:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def branch(self, key: ThreadKey, limit: int) -> list[Turn]:
        """The last ``limit`` turns of the live branch, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_BRANCH, {"key": str(key), "limit": limit})
            return [turn_from_row(row) for row in await cur.fetchall()]

    async def turn_at(self, key: ThreadKey, checkpoint_id: str) -> Turn | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_TURN_BY_CHECKPOINT, (str(key), checkpoint_id))).fetchone()
        return turn_from_row(row) if row else None

    async def conversations(
        self,
        *,
        platform: str | None = None,
        place: str | None = None,
        user: str | None = None,
        limit: int = 20,
    ) -> list[ConversationInfo]:
        params = {"platform": platform, "place": place, "user": user, "limit": limit}
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_LIST, params)).fetchall()
        return [
            ConversationInfo(
                key=ThreadKey.decode(row["key"]),
                title=row["title"],
                turns=row["turns"],
                last_user=row["last_user"],
                created_at=row["created_at"],
                last_active_at=row["last_active_at"],
            )
            for row in rows
        ]

    async def all_turns(self, key: ThreadKey, limit: int) -> list[BranchTurn]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_ALL_TURNS, (str(key), limit))).fetchall()
        return [
            BranchTurn(turn=turn_from_row(r), parent_checkpoint_id=r["parent_checkpoint_id"]) for r in rows
        ]

    async def rewinds(self, key: ThreadKey, limit: int) -> list[Rewind]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_REWINDS, (str(key), limit))).fetchall()
        return [
            Rewind(
                user=r["user_id"], at=r["created_at"],
                from_checkpoint_id=r["from_checkpoint_id"], to_checkpoint_id=r["to_checkpoint_id"],
            )
            for r in rows
        ]

    async def parent_of(self, turn: Turn) -> Turn | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_TURN_PARENT, (turn.turn_id,))).fetchone()
        return turn_from_row(row) if row else None

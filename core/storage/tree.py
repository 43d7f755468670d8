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
SELECT b.*, """ + RATINGS.format(turn="b") + """, """ + "{versions}" + """ FROM branch b LIMIT %(limit)s
"""

# A turn's versions: the turns of its conversation with the same parent (edits, retries,
# replays of one question), numbered by age: "2/3".
_SAME_PARENT = """s.conversation_key = {t}.conversation_key
    AND (s.parent_id = {t}.parent_id OR (s.parent_id IS NULL AND {t}.parent_id IS NULL))"""
VERSIONS = (
    "(SELECT count(*) FROM turns s WHERE " + _SAME_PARENT + " AND s.id <= {t}.id) AS version, "
    "(SELECT count(*) FROM turns s WHERE " + _SAME_PARENT + ") AS versions"
)
_BRANCH = _BRANCH.replace("{versions}", VERSIONS.format(t="b"))

_SIBLINGS = """
SELECT t.*, """ + VERSIONS.format(t="t") + """ FROM turns t
WHERE t.conversation_key = %(key)s
  AND (t.parent_id = %(parent)s OR (t.parent_id IS NULL AND %(parent)s::bigint IS NULL))
ORDER BY t.id
"""

# From a turn down its newest children to a leaf: the branch a version switch goes to.
_NEWEST_LEAF = """
WITH RECURSIVE down AS (
    SELECT t.* FROM turns t WHERE t.id = %(turn)s
  UNION ALL
    SELECT c.* FROM down d CROSS JOIN LATERAL (
        SELECT * FROM turns c WHERE c.conversation_key = d.conversation_key AND c.parent_id = d.id
        ORDER BY c.id DESC LIMIT 1) c
)
SELECT * FROM down ORDER BY seq DESC LIMIT 1
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
        version=row.get("version") or 1,
        versions=row.get("versions") or 1,
    )



class TurnTree:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def branch(self, key: ThreadKey, limit: int) -> list[Turn]:
        """The last ``limit`` turns of the live branch, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_BRANCH, {"key": str(key), "limit": limit})
            return [turn_from_row(row) for row in await cur.fetchall()]

    async def versions(self, key: ThreadKey, turn: Turn) -> list[Turn]:
        """Every version of ``turn`` (the turns with its parent), oldest first."""
        parent = await self.parent_of(turn)
        params = {"key": str(key), "parent": parent.turn_id if parent else None}
        async with self.pool.connection() as conn:
            return [turn_from_row(row) for row in await (await conn.execute(_SIBLINGS, params)).fetchall()]

    async def newest_leaf(self, turn: Turn) -> Turn:
        """The end of the branch under ``turn`` that was added to last (``turn`` if nothing was)."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_NEWEST_LEAF, {"turn": turn.turn_id})).fetchone()
        return turn_from_row(row) if row else turn

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
